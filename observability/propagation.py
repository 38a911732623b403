"""Trace context across Kafka: the W3C ``traceparent`` header, through OpenTelemetry's global
propagator (``OTEL_PROPAGATORS``, tracecontext and baggage by default)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter

KafkaHeaders = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


class _HeaderGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_getter = _HeaderGetter()


def current_traceparent() -> str | None:
    """The current span's context as a ``traceparent`` value, or None outside a span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from_headers(headers: KafkaHeaders) -> otel_context.Context:
    """The context a message's producer sent; an empty one when it sent none or garbage."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    carrier: dict[str, str] = {}
    for key, value in items:
        try:
            carrier[key.lower()] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
    return propagate.extract(carrier, getter=_getter)


def trace_id_of_current_span() -> str | None:
    """32 lower-case hex digits, or None when nothing is being traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def span_id_of_current_span() -> str | None:
    """16 lower-case hex digits, or None when nothing is being traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None
