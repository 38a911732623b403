"""What a connector hands on: rows of Python values keyed by dataset field name."""

from __future__ import annotations

from dataclasses import dataclass, field

# A row carries this key instead of fields when one record could not be read at all, so the
# ingest worker can reject that record (naming the message) and keep the rest of the payload.
INVALID_KEY = "__invalid__"
# A row may carry this key when the source says which region the row belongs to.
REGION_KEY = "region"


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """Rows translated from one payload, the format they came in, and honest remarks on them.

    Values are str, int, float, bool, None (missing) or timezone-aware UTC datetimes. Values
    that could not be converted to their field's type are kept as they were, for the ingest
    worker to reject with the field's name; connectors never drop a record silently.
    """

    rows: list[dict[str, object]]
    format: str
    notes: tuple[str, ...] = field(default=())
