"""Why a record or a whole message was turned away. Rejections are stored, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionReason(StrEnum):
    """Machine-readable reason codes; the message beside each says what exactly was wrong."""

    WRONG_TYPE = "wrong-type"
    MISSING_FIELD = "missing-field"
    UNKNOWN_FIELD = "unknown-field"
    OUT_OF_RANGE = "out-of-range"
    NOT_FINITE = "not-finite"
    FUTURE_TIMESTAMP = "future-timestamp"
    NAIVE_TIMESTAMP = "naive-timestamp"
    UNKNOWN_REGION = "unknown-region"
    COORDINATES_OUT_OF_AREA = "coordinates-out-of-area"
    INVALID_GEOMETRY = "invalid-geometry"
    INVALID_RECORD = "invalid-record"
    BAD_ENCODING = "bad-encoding"
    MALFORMED_BATCH = "malformed-batch"
    OVERSIZED_MESSAGE = "oversized-message"
    UNKNOWN_DATASET = "unknown-dataset"
    BAD_PROVENANCE = "bad-provenance"
    UNSUPPORTED_WIRE_VERSION = "unsupported-wire-version"
    BAD_PAYLOAD = "bad-payload"


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """One record (or, with index -1, a whole message) that was not accepted, and why."""

    index: int
    reason: RejectionReason
    message: str
    record_id: str | None = None
    excerpt: str = ""

    def as_row(self) -> list[object]:
        return [self.index, self.reason.value, self.message, self.record_id, self.excerpt]

    @classmethod
    def from_row(cls, row: list[object]) -> RejectedRecord:
        index, reason, message, record_id, excerpt = row
        return cls(
            index=int(str(index)),
            reason=RejectionReason(str(reason)),
            message=str(message),
            record_id=None if record_id is None else str(record_id),
            excerpt=str(excerpt),
        )


def excerpt_of(value: object, limit: int = 200) -> str:
    """A short printable excerpt of a bad value, so a rejection shows what arrived."""
    try:
        text = repr(value)
    except ValueError:  # e.g. an integer with more digits than Python will print
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
