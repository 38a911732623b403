"""Trace context through Kafka headers: what goes in comes out, and junk never raises."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace

from observability.propagation import (
    context_from_headers,
    current_traceparent,
    span_id_of_current_span,
    trace_id_of_current_span,
)
from tests.support.telemetry import in_memory_telemetry

tracer = trace.get_tracer("tests")


def test_a_span_continues_in_the_consumer_through_the_traceparent_header() -> None:
    in_memory_telemetry()
    with tracer.start_as_current_span("publish") as producer:
        traceparent = current_traceparent()
        trace_id, span_id = trace_id_of_current_span(), span_id_of_current_span()
    assert traceparent is not None

    headers = [("baylink-dataset", b"x"), ("traceparent", traceparent.encode())]
    with tracer.start_as_current_span("consume", context=context_from_headers(headers)) as consumer:
        parent = consumer.parent  # type: ignore[attr-defined]

    context = producer.get_span_context()
    assert traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert int(traceparent[-2:], 16) & 1  # sampled
    assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert consumer.get_span_context().trace_id == context.trace_id
    assert parent.span_id == context.span_id
    assert parent.is_remote


def test_outside_a_span_there_is_nothing_to_propagate() -> None:
    in_memory_telemetry()
    assert current_traceparent() is None
    assert trace_id_of_current_span() is None
    assert span_id_of_current_span() is None


_traceparents = st.builds(
    lambda trace_id, span_id, flags: f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}".encode(),
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 255),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["traceparent", "tracestate", "baggage", "x"]),
            st.binary() | _traceparents,
        ),
        max_size=4,
    )
    | st.dictionaries(st.text(max_size=12), st.binary(), max_size=4)
)
def test_any_header_bytes_give_the_sent_context_or_none_never_an_error(
    headers: list[tuple[str, bytes]] | dict[str, bytes],
) -> None:
    context = trace.get_current_span(context_from_headers(headers)).get_span_context()

    items = headers.items() if isinstance(headers, dict) else headers
    # Like the extraction: the last readable value of the header (undecodable ones are skipped).
    readable = [(k.lower(), v) for k, v in items if _is_utf8(v)]
    sent = dict(readable).get("traceparent", b"")
    if context.is_valid:  # only from the traceparent header, and exactly its ids
        assert f"-{context.trace_id:032x}-{context.span_id:016x}-".encode() in sent
    well_formed = re.fullmatch(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}", sent)
    if well_formed and int(well_formed[1], 16) and int(well_formed[2], 16):
        assert (context.trace_id, context.span_id) == (
            int(well_formed[1], 16),
            int(well_formed[2], 16),
        )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
