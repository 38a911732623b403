"""Telemetry for one process, set up once at its entry point (connector, worker, snapshot
builder, API); everything else speaks only the OpenTelemetry API.

Configured by the standard variables, so any OpenTelemetry tooling works unchanged:

- ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` or ``none`` (default ``none``);
- ``OTEL_METRICS_EXPORTER``: any of ``prometheus``, ``otlp``, ``console``, ``none``, comma
  separated (default ``prometheus``: served as text by the process's metrics endpoint);
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or the ``_TRACES_`` / ``_METRICS_`` variants):
  ``http/protobuf`` (default) or ``grpc``; ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other
  exporter variables are read by the exporters themselves;
- ``OTEL_SERVICE_NAME`` (default ``baylink-<component>``), ``OTEL_RESOURCE_ATTRIBUTES``;
- ``BAYLINK_REGION`` and ``BAYLINK_NODE`` (default: the host name) become the resource
  attributes ``baylink.region`` and ``baylink.node``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

TRACE_EXPORTERS = ("otlp", "console", "none")
METRIC_EXPORTERS = ("prometheus", "otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")


class TelemetryConfigError(ValueError):
    """An OTEL_* or BAYLINK_* telemetry variable has a value this platform does not know."""


@dataclass(frozen=True)
class TelemetrySettings:
    """What ``configure`` sets up, read from the environment by ``from_environ``."""

    component: str
    traces_exporter: str = "none"
    metrics_exporters: tuple[str, ...] = ("prometheus",)
    traces_protocol: str = "http/protobuf"
    metrics_protocol: str = "http/protobuf"
    service_name: str = ""
    region: str | None = None
    node: str = field(default_factory=socket.gethostname)
    # Seconds an OTLP span export may take, retries included; None: the exporter's own
    # (OTEL_EXPORTER_OTLP_TIMEOUT, else 10 s). Short-lived commands set it low, so an
    # unreachable collector does not hold up their exit.
    export_timeout_seconds: float | None = None

    @classmethod
    def from_environ(
        cls, component: str, environ: Mapping[str, str] | None = None
    ) -> TelemetrySettings:
        env = os.environ if environ is None else environ
        traces = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower() or "none"
        if traces not in TRACE_EXPORTERS:
            raise TelemetryConfigError(
                f"OTEL_TRACES_EXPORTER={traces!r}: expected one of {', '.join(TRACE_EXPORTERS)}"
            )
        wanted = env.get("OTEL_METRICS_EXPORTER", "prometheus").lower()
        metric_exporters = tuple(e.strip() for e in wanted.split(",") if e.strip())
        unknown = [e for e in metric_exporters if e not in METRIC_EXPORTERS]
        if unknown:
            raise TelemetryConfigError(
                f"OTEL_METRICS_EXPORTER={wanted!r}: expected any of {', '.join(METRIC_EXPORTERS)}"
            )
        traces_protocol = _protocol(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        metrics_protocol = _protocol(env, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        return cls(
            component=component,
            traces_exporter=traces,
            metrics_exporters=tuple(e for e in metric_exporters if e != "none"),
            traces_protocol=traces_protocol,
            metrics_protocol=metrics_protocol,
            service_name=env.get("OTEL_SERVICE_NAME", "") or f"baylink-{component}",
            region=env.get("BAYLINK_REGION") or None,
            node=env.get("BAYLINK_NODE") or socket.gethostname(),
        )


def _protocol(env: Mapping[str, str], specific: str) -> str:
    """The signal's own variable if set, else the general one, else HTTP."""
    name = specific if specific in env else "OTEL_EXPORTER_OTLP_PROTOCOL"
    value = env.get(name, "http/protobuf")
    if value not in PROTOCOLS:
        raise TelemetryConfigError(f"{name}={value!r}: expected one of {', '.join(PROTOCOLS)}")
    return value


@dataclass
class Telemetry:
    """The providers of one process; ``shutdown`` flushes what is still buffered."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_configured: Telemetry | None = None


def configure(
    settings: TelemetrySettings,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """Install the process's tracer and meter providers; the first call wins (OpenTelemetry
    allows one of each per process), later calls return it unchanged.

    ``span_processors`` and ``metric_readers`` are added to those the settings ask for (tests
    pass in-memory ones).
    """
    global _configured  # noqa: PLW0603 - one telemetry set-up per process, by design
    if _configured is not None:
        return _configured
    resource = Resource.create(
        {
            "service.name": settings.service_name or f"baylink-{settings.component}",
            "service.namespace": "baylink",
            "service.instance.id": f"{settings.node}/{os.getpid()}",
            "baylink.component": settings.component,
            "baylink.node": settings.node,
            **({"baylink.region": settings.region} if settings.region else {}),
        }
    )
    tracer_provider = TracerProvider(resource=resource)
    exporter = _span_exporter(settings)
    if exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    readers = [*_metric_readers(settings), *metric_readers]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _configured = Telemetry(settings, tracer_provider, meter_provider)
    return _configured


def configured() -> Telemetry | None:
    return _configured


def _span_exporter(settings: TelemetrySettings) -> SpanExporter | None:
    if settings.traces_exporter == "console":
        # stderr: commands print their results (and --json) on stdout.
        return ConsoleSpanExporter(out=sys.stderr)
    if settings.traces_exporter != "otlp":
        return None
    if settings.traces_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(timeout=settings.export_timeout_seconds)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(timeout=settings.export_timeout_seconds)


def _metric_readers(settings: TelemetrySettings) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in settings.metrics_exporters:
        if name == "prometheus":
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            readers.append(PrometheusMetricReader())
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr)))
        elif name == "otlp" and settings.metrics_protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(GrpcMetricExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HttpMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(HttpMetricExporter()))
    return readers
