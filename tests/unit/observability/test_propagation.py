"""Trace context through Kafka headers: what goes in comes out, and junk never raises."""

from __future__ import annotations

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


@given(
    st.lists(
        st.tuples(st.sampled_from(["traceparent", "tracestate", "baggage", "x"]), st.binary()),
        max_size=4,
    )
    | st.dictionaries(st.text(max_size=12), st.binary(), max_size=4)
)
def test_any_header_bytes_give_a_context_or_none_never_an_error(
    headers: list[tuple[str, bytes]] | dict[str, bytes],
) -> None:
    context = context_from_headers(headers)
    span_context = trace.get_current_span(context).get_span_context()

    assert span_context.is_valid in (True, False)
    if span_context.is_valid:
        assert span_context.trace_id != 0
        assert span_context.span_id != 0
