"""The cross-border whitelist: which data may cross from one jurisdiction to another, and why.

Crossing is denied unless a rule allows it. A rule names the direction (source and destination
jurisdiction), the data (one dataset, or every dataset of a kind), the highest classification
that may cross, the purposes it may serve, whether personal data may cross, the legal basis
(e.g. a GBA Standard Contract filing number) and when it is valid. ``restricted`` data never
leaves its jurisdiction, so no rule may allow it.

The whitelist is one event-sourced aggregate: every change is an event, and its version is
the whitelist version that every policy decision cites.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind
from domain.errors import (
    WhitelistRuleError,
    WhitelistRuleExistsError,
    WhitelistRuleNotFoundError,
)

WHITELIST_ID = uuid5(NAMESPACE_URL, "urn:baylink:whitelist")
_JURISDICTION = re.compile(r"^[A-Z]{2}$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True, slots=True)
class WhitelistRule:
    """One permitted direction of crossing for one dataset or dataset kind."""

    rule_id: str
    source_jurisdiction: str
    destination_jurisdiction: str
    max_classification: Classification
    purposes: frozenset[str]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime | None = None
    dataset_id: str | None = None
    dataset_kind: DatasetKind | None = None
    personal_data: bool = False

    def __post_init__(self) -> None:
        where = f"whitelist rule {self.rule_id!r}"
        if not _RULE_ID.match(self.rule_id):
            raise WhitelistRuleError(f"{where}: a rule id is 1-80 letters, digits, '.', '_', '-'")
        for name in ("source_jurisdiction", "destination_jurisdiction"):
            if not _JURISDICTION.match(getattr(self, name)):
                raise WhitelistRuleError(f"{where}: {name} must be a two-letter jurisdiction")
        if self.source_jurisdiction == self.destination_jurisdiction:
            raise WhitelistRuleError(
                f"{where}: data within one jurisdiction needs no whitelist rule"
            )
        if (self.dataset_id is None) == (self.dataset_kind is None):
            raise WhitelistRuleError(f"{where}: name exactly one of dataset_id or dataset_kind")
        if self.max_classification >= Classification.RESTRICTED:
            raise WhitelistRuleError(
                f"{where}: restricted data never leaves its jurisdiction; "
                "the highest classification a rule may allow is sensitive"
            )
        if not self.purposes or not all(p.strip() for p in self.purposes):
            raise WhitelistRuleError(f"{where}: name at least one purpose")
        if not self.legal_basis.strip():
            raise WhitelistRuleError(f"{where}: a legal basis reference is required")
        for moment in (self.valid_from, self.valid_until):
            if moment is not None and moment.utcoffset() is None:
                raise WhitelistRuleError(f"{where}: validity times must carry a time zone")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise WhitelistRuleError(f"{where}: valid_until must be after valid_from")

    def covers(self, dataset: DatasetDefinition) -> bool:
        return self.dataset_id == dataset.id or self.dataset_kind == dataset.kind

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def allows(
        self, source: str, destination: str, dataset: DatasetDefinition, purpose: str, at: datetime
    ) -> bool:
        """Whether this rule lets ``dataset`` cross from ``source`` to ``destination`` now."""
        return (
            self.source_jurisdiction == source
            and self.destination_jurisdiction == destination
            and self.covers(dataset)
            and purpose in self.purposes
            and self.valid_at(at)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "source_jurisdiction": self.source_jurisdiction,
            "destination_jurisdiction": self.destination_jurisdiction,
            "dataset_id": self.dataset_id,
            "dataset_kind": None if self.dataset_kind is None else self.dataset_kind.value,
            "max_classification": self.max_classification.label,
            "purposes": sorted(self.purposes),
            "personal_data": self.personal_data,
            "legal_basis": self.legal_basis,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> WhitelistRule:
        """Read a rule from its plain form (as stored, or as an administrator wrote it)."""
        try:
            kind = raw.get("dataset_kind")
            until = raw.get("valid_until")
            purposes = raw["purposes"]
            if isinstance(purposes, str) or not isinstance(purposes, Iterable):
                raise WhitelistRuleError("purposes: expected a list of purposes")
            return cls(
                rule_id=str(raw["rule_id"]),
                source_jurisdiction=str(raw["source_jurisdiction"]),
                destination_jurisdiction=str(raw["destination_jurisdiction"]),
                dataset_id=None if raw.get("dataset_id") is None else str(raw["dataset_id"]),
                dataset_kind=None if kind is None else DatasetKind(kind),
                max_classification=Classification.parse(str(raw["max_classification"])),
                purposes=frozenset(str(p) for p in purposes),
                personal_data=_as_bool(raw.get("personal_data", False)),
                legal_basis=str(raw["legal_basis"]),
                valid_from=_as_time(raw["valid_from"], "valid_from"),
                valid_until=None if until is None else _as_time(until, "valid_until"),
            )
        except KeyError as missing:
            raise WhitelistRuleError(f"whitelist rule: {missing.args[0]} is required") from None
        except ValueError as error:
            raise WhitelistRuleError(f"whitelist rule: {error}") from None


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise WhitelistRuleError(f"personal_data: expected true or false, got {value!r}")


def _as_time(value: object, name: str) -> datetime:
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None or moment.utcoffset() is None:
        raise WhitelistRuleError(f"{name}: expected an ISO 8601 time with a zone, got {value!r}")
    return moment


@dataclass(frozen=True, slots=True)
class WhitelistView:
    """The rules in force at one version of the whitelist: what a policy decision reads."""

    version: int
    rules: tuple[WhitelistRule, ...] = ()

    def __post_init__(self) -> None:
        ids = [rule.rule_id for rule in self.rules]
        if len(set(ids)) != len(ids):
            raise WhitelistRuleError(f"whitelist version {self.version} repeats a rule id")

    def rule_for(
        self, source: str, destination: str, dataset: DatasetDefinition, purpose: str, at: datetime
    ) -> WhitelistRule | None:
        """The rule that lets the data cross; of several, the most permissive, then by id."""
        matching = [r for r in self.rules if r.allows(source, destination, dataset, purpose, at)]
        if not matching:
            return None
        return max(matching, key=lambda r: (r.max_classification, r.personal_data, r.rule_id))


class Whitelist(Aggregate):
    """The deployment's one whitelist; each change raises its version."""

    @staticmethod
    def create_id() -> UUID:
        return WHITELIST_ID

    @event("Created")
    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}

    def add_rule(self, rule: WhitelistRule) -> None:
        if rule.rule_id in self.rules:
            raise WhitelistRuleExistsError(f"whitelist rule {rule.rule_id!r} exists already")
        self._add_rule(rule.as_dict())

    @event("RuleAdded")
    def _add_rule(self, rule: dict[str, Any]) -> None:
        self.rules[rule["rule_id"]] = rule

    def withdraw_rule(self, rule_id: str, reason: str) -> None:
        if rule_id not in self.rules:
            raise WhitelistRuleNotFoundError(f"no whitelist rule {rule_id!r}")
        if not reason.strip():
            raise WhitelistRuleError("say why the rule is withdrawn")
        self._withdraw_rule(rule_id, reason)

    @event("RuleWithdrawn")
    def _withdraw_rule(self, rule_id: str, reason: str) -> None:
        del self.rules[rule_id]

    def view(self) -> WhitelistView:
        return WhitelistView(
            self.version,
            tuple(WhitelistRule.from_dict(raw) for _, raw in sorted(self.rules.items())),
        )
