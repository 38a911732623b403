"""Telemetry settings come from the standard OTEL_* variables, and bad values are named."""

from __future__ import annotations

import pytest

from observability.telemetry import TelemetryConfigError, TelemetrySettings


def test_defaults_trace_nothing_and_serve_prometheus() -> None:
    settings = TelemetrySettings.from_environ("worker", {})

    assert settings.traces_exporter == "none"
    assert settings.metrics_exporters == ("prometheus",)
    assert settings.service_name == "baylink-worker"
    assert settings.traces_protocol == "http/protobuf"
    assert settings.region is None
    assert settings.node


def test_standard_variables_choose_exporters_protocols_and_names() -> None:
    settings = TelemetrySettings.from_environ(
        "api",
        {
            "OTEL_TRACES_EXPORTER": "OTLP",
            "OTEL_METRICS_EXPORTER": "prometheus, otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "hk-gateway",
            "BAYLINK_REGION": "hk",
            "BAYLINK_NODE": "node-7",
        },
    )

    assert settings.traces_exporter == "otlp"
    assert settings.metrics_exporters == ("prometheus", "otlp")
    assert settings.traces_protocol == "grpc"
    assert settings.metrics_protocol == "http/protobuf"
    assert settings.service_name == "hk-gateway"
    assert (settings.region, settings.node) == ("hk", "node-7")


def test_none_switches_metrics_off() -> None:
    assert (
        TelemetrySettings.from_environ("api", {"OTEL_METRICS_EXPORTER": "none"}).metrics_exporters
        == ()
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_METRICS_EXPORTER", "prometheus,statsd"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
    ],
)
def test_an_unknown_value_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(TelemetryConfigError, match=variable):
        TelemetrySettings.from_environ("worker", {variable: value})
