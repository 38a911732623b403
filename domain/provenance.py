"""Provenance: where a record came from. A required value, never an optional field."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from domain.errors import ProvenanceError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Source, time of receipt, payload digest, connector, region, wire schema and trace."""

    source_uri: str
    received_at: datetime
    payload_sha256: str
    connector: str
    connector_version: str
    region: str
    wire_schema_version: int
    trace_id: str | None = None
    # The connector's span for this payload, so a later span (a query of the record) can
    # link to it: a link needs a span, not only a trace.
    span_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("source_uri", "connector", "connector_version", "region"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ProvenanceError(f"provenance.{name} must be a non-empty string")
        if not isinstance(self.received_at, datetime) or self.received_at.utcoffset() is None:
            raise ProvenanceError("provenance.received_at must be a timezone-aware time")
        if not _SHA256.match(self.payload_sha256):
            raise ProvenanceError("provenance.payload_sha256 must be 64 lower-case hex digits")
        if isinstance(self.wire_schema_version, bool) or not isinstance(
            self.wire_schema_version, int
        ):
            raise ProvenanceError("provenance.wire_schema_version must be a whole number")
        if self.trace_id is not None and not _TRACE_ID.match(self.trace_id):
            raise ProvenanceError("provenance.trace_id must be 32 lower-case hex digits")
        if self.span_id is not None and not (
            isinstance(self.span_id, str) and _SPAN_ID.match(self.span_id)
        ):
            raise ProvenanceError("provenance.span_id must be 16 lower-case hex digits")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["received_at"] = self.received_at.isoformat()
        if self.span_id is None:
            del out["span_id"]  # provenance stored before span ids existed keeps its form
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        try:
            received = data["received_at"]
            if isinstance(received, str):
                received = datetime.fromisoformat(received)
            return cls(
                source_uri=data["source_uri"],
                received_at=received,
                payload_sha256=data["payload_sha256"],
                connector=data["connector"],
                connector_version=str(data["connector_version"]),
                region=data["region"],
                wire_schema_version=data["wire_schema_version"],
                trace_id=data.get("trace_id"),
                span_id=data.get("span_id"),
            )
        except KeyError as missing:
            raise ProvenanceError(f"provenance is missing {missing.args[0]!r}") from None
        except (TypeError, ValueError) as error:
            raise ProvenanceError(f"provenance is malformed: {error}") from None
