"""Partners: government bodies in a region that receive data, and their API keys.

A key is shown once, when issued; only its SHA-256 digest is stored (keys are 256-bit random
secrets, so a slow password hash would add nothing). Rotation issues a new key and lets the
old one run on until the end of an overlap window, so clients can switch without a failed
request; revocation ends a key at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.classification import Classification
from domain.errors import ApiKeyNotFoundError, PartnerError

_PARTNER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:partner")
_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
SCOPES = frozenset({"read", "subscribe", "audit"})
KEY_PREFIX = "blk"


def partner_id_for(region: str, name: str) -> str:
    """A readable id from region and name, e.g. ``hk-transport-department``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{region}-{slug}"[:80].rstrip("-")


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, whole key) from ``blk_<key id>_<secret>``, or None if it is not one of ours."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], presented


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    digest: str
    scopes: frozenset[str]
    issued_at: datetime
    not_after: datetime | None = None
    revoked: bool = False

    def valid_at(self, at: datetime) -> bool:
        return (
            not self.revoked
            and self.issued_at <= at
            and (self.not_after is None or at < self.not_after)
        )


class Partner(Aggregate):
    """A partner, its clearance and scopes, and the keys it may present."""

    @staticmethod
    def create_id(partner_id: str) -> UUID:
        return uuid5(_PARTNER_NAMESPACE, partner_id)

    @event("Registered")
    def __init__(
        self, partner_id: str, region: str, name: str, clearance: str, scopes: list[str]
    ) -> None:
        if not _PARTNER_ID.match(partner_id):
            raise PartnerError(
                f"partner id {partner_id!r}: 2-80 lower-case letters, digits and '-'"
            )
        if not name.strip():
            raise PartnerError("a partner needs a name")
        unknown = sorted(set(scopes) - SCOPES)
        if unknown:
            raise PartnerError(f"unknown scopes {unknown}; expected some of {sorted(SCOPES)}")
        Classification.parse(clearance)
        self.partner_id = partner_id
        self.region = region
        self.name = name.strip()
        self.clearance = clearance
        self.scopes = sorted(set(scopes))
        self.keys: dict[str, dict[str, Any]] = {}

    def issue_key(
        self, key_id: str, digest: str, issued_at: datetime, not_after: datetime | None = None
    ) -> None:
        if key_id in self.keys:
            raise PartnerError(f"partner {self.partner_id} has a key {key_id!r} already")
        self._key_issued(key_id, digest, issued_at, not_after)

    @event("KeyIssued")
    def _key_issued(
        self, key_id: str, digest: str, issued_at: datetime, not_after: datetime | None
    ) -> None:
        self.keys[key_id] = {
            "digest": digest,
            "issued_at": issued_at,
            "not_after": not_after,
            "revoked": False,
        }

    def retire_key(self, key_id: str, not_after: datetime) -> None:
        """Let a rotated-out key run on until ``not_after``, then end."""
        self._key(key_id)
        self._key_retiring(key_id, not_after)

    @event("KeyRetiring")
    def _key_retiring(self, key_id: str, not_after: datetime) -> None:
        current = self.keys[key_id]["not_after"]
        self.keys[key_id]["not_after"] = not_after if current is None else min(current, not_after)

    def revoke_key(self, key_id: str, reason: str) -> None:
        self._key(key_id)
        if not reason.strip():
            raise PartnerError("say why the key is revoked")
        self._key_revoked(key_id, reason.strip())

    @event("KeyRevoked")
    def _key_revoked(self, key_id: str, reason: str) -> None:
        self.keys[key_id]["revoked"] = True

    def _key(self, key_id: str) -> ApiKey:
        raw = self.keys.get(key_id)
        if raw is None:
            raise ApiKeyNotFoundError(f"partner {self.partner_id} has no key {key_id!r}")
        return ApiKey(
            key_id,
            raw["digest"],
            frozenset(self.scopes),
            raw["issued_at"],
            raw["not_after"],
            raw["revoked"],
        )

    def key_accepts(self, key_id: str, presented: str, at: datetime) -> bool:
        """Whether ``presented`` is this partner's key ``key_id``, valid at ``at``."""
        raw = self.keys.get(key_id)
        if raw is None:
            return False
        key = self._key(key_id)
        return hmac.compare_digest(key.digest, key_digest(presented)) and key.valid_at(at)

    def active_keys(self, at: datetime) -> list[ApiKey]:
        return [self._key(key_id) for key_id in sorted(self.keys) if self._key(key_id).valid_at(at)]
