"""The ingest wire format: batches round-trip, and any bytes either decode or name their fault."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.provenance import Provenance
from domain.rejection import RejectionReason
from streams import wire
from streams.errors import WireError

DATASET = "gba.traffic.sensor-readings"

PROVENANCE = Provenance(
    source_uri="file:///readings.csv",
    received_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
    payload_sha256="ab" * 32,
    connector="tabular",
    connector_version="1",
    region="gd-shenzhen",
    wire_schema_version=wire.WIRE_SCHEMA_VERSION,
    trace_id="0af7651916cd43dd8448eb211c80319c",
)
HEADERS = wire.headers_for(wire.KIND_RECORDS, DATASET, PROVENANCE, "00-0af7-01")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
)
rows = st.lists(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=6), max_size=20)


@given(rows)
def test_a_batch_of_rows_round_trips_with_its_provenance(batch: list[dict[str, Any]]) -> None:
    decoded = wire.decode(wire.encode_rows(batch), HEADERS, DATASET)

    assert decoded.rows == batch
    assert decoded.provenance == PROVENANCE
    assert decoded.traceparent == "00-0af7-01"
    assert decoded.kind == wire.KIND_RECORDS


@given(st.binary(max_size=512))
def test_any_bytes_either_decode_or_raise_a_wire_error_with_a_reason(value: bytes) -> None:
    outcome: object
    try:
        outcome = wire.decode(value, HEADERS, DATASET).rows
    except WireError as error:
        outcome = error

    if isinstance(outcome, WireError):
        assert outcome.reason in (RejectionReason.BAD_ENCODING, RejectionReason.MALFORMED_BATCH)
        assert outcome.message
    else:
        assert isinstance(outcome, list)


def test_a_message_for_another_dataset_is_refused_naming_both() -> None:
    with pytest.raises(WireError) as caught:
        wire.decode(wire.encode_rows([]), HEADERS, "hk.traffic.other")

    assert caught.value.reason is RejectionReason.UNKNOWN_DATASET
    assert DATASET in caught.value.message
    assert "hk.traffic.other" in caught.value.message


def test_a_rejected_payload_message_carries_the_connectors_reason() -> None:
    headers = wire.headers_for(wire.KIND_REJECTED_PAYLOAD, DATASET, PROVENANCE, None)
    value = wire.encode_payload_rejection("truncated-protobuf", "ends at byte 207", 414)

    decoded = wire.decode(value, headers, DATASET)

    assert decoded.payload_rejection == ("truncated-protobuf", "ends at byte 207")
    assert decoded.rows == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(k, v) for k, v in HEADERS if k != wire.H_PROVENANCE], RejectionReason.BAD_PROVENANCE),
        (
            [(k, b"{}" if k == wire.H_PROVENANCE else v) for k, v in HEADERS],
            RejectionReason.BAD_PROVENANCE,
        ),
        (
            [(k, b"2" if k == wire.H_WIRE_VERSION else v) for k, v in HEADERS],
            RejectionReason.UNSUPPORTED_WIRE_VERSION,
        ),
        (
            [(k, b"\xff" if k == wire.H_DATASET else v) for k, v in HEADERS],
            RejectionReason.BAD_ENCODING,
        ),
    ],
)
def test_bad_headers_are_named(headers: list[tuple[str, bytes]], reason: RejectionReason) -> None:
    with pytest.raises(WireError) as caught:
        wire.decode(wire.encode_rows([{}]), headers, DATASET)

    assert caught.value.reason is reason


def test_an_oversized_message_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(WireError) as caught:
        wire.decode(b"\x90" * (wire.MAX_MESSAGE_BYTES + 1), HEADERS, DATASET)

    assert caught.value.reason is RejectionReason.OVERSIZED_MESSAGE
