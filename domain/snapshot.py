"""Snapshots: derived, deterministic Parquet views of a dataset over a range of the event log.

A manifest names every file with its SHA-256 and row count, the log range it covers and the
heads of the dataset's hash chains at the end of that range; publishing one is an event.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent

_SNAPSHOT_LOG_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:snapshot-log")


def snapshot_log_id(dataset_id: str) -> UUID:
    return uuid5(_SNAPSHOT_LOG_NAMESPACE, dataset_id)


def snapshot_id_for(first_position: int, last_position: int) -> str:
    """Named by the log range it covers, so a rebuild lands on the same keys."""
    return f"{first_position:012d}-{last_position:012d}"


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """One Parquet file of a snapshot: one region and one day."""

    key: str
    region: str
    date: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ChainHeadRef:
    """Where one chain stood at the end of the snapshot's range."""

    partition: int
    version: int
    hash: str


@dataclass(frozen=True)
class Manifest:
    """Everything a reader or auditor needs to trust and rebuild a snapshot."""

    dataset_id: str
    schema_version: int
    snapshot_id: str
    first_position: int
    last_position: int
    row_count: int
    files: tuple[SnapshotFile, ...]
    chain_heads: tuple[ChainHeadRef, ...]
    writer: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no wall-clock, so the same snapshot gives the same bytes."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        return cls(
            dataset_id=raw["dataset_id"],
            schema_version=raw["schema_version"],
            snapshot_id=raw["snapshot_id"],
            first_position=raw["first_position"],
            last_position=raw["last_position"],
            row_count=raw["row_count"],
            files=tuple(SnapshotFile(**f) for f in raw["files"]),
            chain_heads=tuple(ChainHeadRef(**h) for h in raw["chain_heads"]),
            writer=raw.get("writer", {}),
        )

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()


class SnapshotLog:
    """Namespace of the events recorded on a dataset's snapshot log."""

    @dataclass(frozen=True)
    class Published(DomainEvent):
        """A snapshot was written and verified; its manifest is at ``manifest_key``."""

        dataset_id: str
        snapshot_id: str
        manifest_key: str
        manifest_sha256: str
        first_position: int
        last_position: int
        row_count: int
        chain_heads: list[list[Any]]
