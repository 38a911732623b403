"""Sharing agreements: what one region's data owner grants one partner, and for what.

Lifecycle: proposed (by the provider) → approved (provider) → accepted (consumer) → active →
suspended (and resumed) or revoked; an agreement past its validity is expired whatever its
recorded state. A cross-jurisdiction agreement needs a whitelist rule at activation, and the
policy checks the whitelist again at every use, so a change to the whitelist takes effect at
once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.dataset import DatasetDefinition
from domain.errors import AgreementStateError, AgreementTermsError
from domain.transformation import Transformation

_AGREEMENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:agreement")
_AGREEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class AgreementState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"  # never recorded: read from the validity at the time asked


@dataclass(frozen=True, slots=True)
class RowScope:
    """Which rows a grant reaches: regions, a WGS-84 box, a window on the time field.

    None means no limit on that axis. The box is (min_lon, min_lat, max_lon, max_lat).
    """

    regions: frozenset[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "regions": None if self.regions is None else sorted(self.regions),
            "bbox": None if self.bbox is None else list(self.bbox),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RowScope:
        if raw is None:
            return cls()
        regions, bbox = raw.get("regions"), raw.get("bbox")
        scope = cls(
            regions=None if regions is None else frozenset(str(r) for r in regions),
            bbox=None if bbox is None else _bbox(bbox),
            start=_time_or_none(raw.get("start"), "row_scope.start"),
            end=_time_or_none(raw.get("end"), "row_scope.end"),
        )
        if scope.start is not None and scope.end is not None and scope.end <= scope.start:
            raise AgreementTermsError("row_scope: end must be after start")
        return scope


def _bbox(raw: object) -> tuple[float, float, float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        raise AgreementTermsError(f"row_scope.bbox: expected four numbers, got {raw!r}")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in raw)
    except (TypeError, ValueError):
        raise AgreementTermsError(f"row_scope.bbox: expected four numbers, got {raw!r}") from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise AgreementTermsError(
            "row_scope.bbox: expected min_lon <= max_lon within ±180 and min_lat <= max_lat "
            f"within ±90, got {raw!r}"
        )
    return (min_lon, min_lat, max_lon, max_lat)


def _time_or_none(raw: object, name: str) -> datetime | None:
    return None if raw is None else _time(raw, name)


def _time(raw: object, name: str) -> datetime:
    moment = raw if isinstance(raw, datetime) else None
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            moment = None
    if moment is None or moment.utcoffset() is None:
        raise AgreementTermsError(f"{name}: expected an ISO 8601 time with a zone, got {raw!r}")
    return moment


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """What is granted: datasets, their permitted fields, rows, transformations, purpose, time.

    ``fields`` maps a dataset id to its permitted fields; a dataset absent from it grants every
    field (still capped by classification, clearance and the whitelist).
    """

    agreement_id: str
    provider_region: str
    consumer_partner: str
    datasets: frozenset[str]
    purpose: str
    valid_from: datetime
    valid_until: datetime | None = None
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    row_scope: RowScope = field(default_factory=RowScope)
    transformations: Mapping[str, tuple[Transformation, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"agreement {self.agreement_id!r}"
        if not _AGREEMENT_ID.match(self.agreement_id):
            raise AgreementTermsError(
                f"{where}: an agreement id is 1-80 letters, digits, '.', '_', '-'"
            )
        if not self.datasets:
            raise AgreementTermsError(f"{where}: name at least one dataset")
        if not self.purpose.strip():
            raise AgreementTermsError(f"{where}: a purpose is required")
        if not self.consumer_partner.strip():
            raise AgreementTermsError(f"{where}: a consumer partner is required")
        for moment in (self.valid_from, self.valid_until):
            if moment is not None and moment.utcoffset() is None:
                raise AgreementTermsError(f"{where}: validity times must carry a time zone")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise AgreementTermsError(f"{where}: valid_until must be after valid_from")
        for dataset_id in (*self.fields, *self.transformations):
            if dataset_id not in self.datasets:
                raise AgreementTermsError(f"{where}: {dataset_id!r} is not one of its datasets")

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def permitted_fields(self, dataset: DatasetDefinition) -> frozenset[str]:
        return self.fields.get(dataset.id, frozenset(dataset.field_names))

    def check_against(self, dataset: DatasetDefinition) -> None:
        """Raise AgreementTermsError unless every named field and transformation fits."""
        unknown = sorted(self.fields.get(dataset.id, frozenset()) - set(dataset.field_names))
        if unknown:
            raise AgreementTermsError(
                f"agreement {self.agreement_id!r}: {dataset.id} has no fields {unknown}"
            )
        for transformation in self.transformations.get(dataset.id, ()):
            transformation.check_against(dataset)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agreement_id": self.agreement_id,
            "provider_region": self.provider_region,
            "consumer_partner": self.consumer_partner,
            "datasets": sorted(self.datasets),
            "purpose": self.purpose,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
            "fields": {k: sorted(v) for k, v in sorted(self.fields.items())},
            "row_scope": self.row_scope.as_dict(),
            "transformations": {
                k: [t.as_dict() for t in v] for k, v in sorted(self.transformations.items())
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AgreementTerms:
        try:
            return cls(
                agreement_id=str(raw["agreement_id"]),
                provider_region=str(raw["provider_region"]),
                consumer_partner=str(raw["consumer_partner"]),
                datasets=frozenset(_strings(raw["datasets"], "datasets")),
                purpose=str(raw["purpose"]),
                valid_from=_time(raw["valid_from"], "valid_from"),
                valid_until=_time_or_none(raw.get("valid_until"), "valid_until"),
                fields={
                    str(k): frozenset(_strings(v, f"fields.{k}"))
                    for k, v in _mapping(raw.get("fields", {}), "fields").items()
                },
                row_scope=RowScope.from_dict(raw.get("row_scope")),
                transformations={
                    str(k): tuple(Transformation.from_dict(t) for t in v)
                    for k, v in _mapping(raw.get("transformations", {}), "transformations").items()
                },
            )
        except KeyError as missing:
            raise AgreementTermsError(f"agreement: {missing.args[0]} is required") from None


def _strings(raw: object, name: str) -> list[str]:
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise AgreementTermsError(f"{name}: expected a list, got {raw!r}")
    return [str(item) for item in raw]


def _mapping(raw: object, name: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise AgreementTermsError(f"{name}: expected a mapping, got {raw!r}")
    return raw


class SharingAgreement(Aggregate):
    """One agreement's terms and where it stands in its lifecycle."""

    @staticmethod
    def create_id(agreement_id: str) -> UUID:
        return uuid5(_AGREEMENT_NAMESPACE, agreement_id)

    @event("Proposed")
    def __init__(self, agreement_id: str, terms: dict[str, Any], proposed_by: str) -> None:
        self.agreement_id = agreement_id
        self.terms_dict = terms
        self.state = AgreementState.PROPOSED
        self.history: list[tuple[str, str]] = [(AgreementState.PROPOSED.value, proposed_by)]
        self.whitelist_rules: list[str] = []

    @property
    def terms(self) -> AgreementTerms:
        return AgreementTerms.from_dict(self.terms_dict)

    def state_at(self, at: datetime) -> AgreementState:
        """The recorded state, or expired once the validity has passed."""
        terms = self.terms
        if terms.valid_until is not None and at >= terms.valid_until:
            return AgreementState.EXPIRED
        return self.state

    def _require(self, action: str, *allowed: AgreementState) -> None:
        if self.state not in allowed:
            raise AgreementStateError(
                f"agreement {self.agreement_id!r} is {self.state.value}: cannot {action} it "
                f"(only when {' or '.join(s.value for s in allowed)})"
            )

    def approve(self, by: str) -> None:
        self._require("approve", AgreementState.PROPOSED)
        self._approved(by)

    @event("Approved")
    def _approved(self, by: str) -> None:
        self._enter(AgreementState.APPROVED, by)

    def accept(self, by: str) -> None:
        self._require("accept", AgreementState.APPROVED)
        self._accepted(by)

    @event("Accepted")
    def _accepted(self, by: str) -> None:
        self._enter(AgreementState.ACCEPTED, by)

    def activate(self, by: str, at: datetime, whitelist_rules: list[str]) -> None:
        """Make the agreement active; ``whitelist_rules`` are the rules that let its datasets
        cross a border, which the caller found in the current whitelist (none within one
        jurisdiction)."""
        self._require("activate", AgreementState.ACCEPTED)
        self._check_valid_at(at)
        self._activated(by, whitelist_rules)

    @event("Activated")
    def _activated(self, by: str, whitelist_rules: list[str]) -> None:
        self.whitelist_rules = whitelist_rules
        self._enter(AgreementState.ACTIVE, by)

    def suspend(self, by: str, reason: str) -> None:
        self._require("suspend", AgreementState.ACTIVE)
        self._suspended(by, _reason(reason, "suspended"))

    @event("Suspended")
    def _suspended(self, by: str, reason: str) -> None:
        self._enter(AgreementState.SUSPENDED, f"{by}: {reason}")

    def resume(self, by: str, at: datetime, whitelist_rules: list[str]) -> None:
        self._require("resume", AgreementState.SUSPENDED)
        self._check_valid_at(at)
        self._resumed(by, whitelist_rules)

    @event("Resumed")
    def _resumed(self, by: str, whitelist_rules: list[str]) -> None:
        self.whitelist_rules = whitelist_rules
        self._enter(AgreementState.ACTIVE, by)

    def revoke(self, by: str, reason: str) -> None:
        self._require(
            "revoke",
            AgreementState.PROPOSED,
            AgreementState.APPROVED,
            AgreementState.ACCEPTED,
            AgreementState.ACTIVE,
            AgreementState.SUSPENDED,
        )
        self._revoked(by, _reason(reason, "revoked"))

    @event("Revoked")
    def _revoked(self, by: str, reason: str) -> None:
        self._enter(AgreementState.REVOKED, f"{by}: {reason}")

    def _enter(self, state: AgreementState, note: str) -> None:
        self.state = state
        self.history.append((state.value, note))

    def _check_valid_at(self, at: datetime) -> None:
        if not self.terms.valid_at(at):
            raise AgreementStateError(
                f"agreement {self.agreement_id!r} is not valid at {at.isoformat()}"
            )


def _reason(reason: str, what: str) -> str:
    if not reason.strip():
        raise AgreementStateError(f"say why the agreement is {what}")
    return reason.strip()
