"""A command's spans go out at exit: an unreachable collector must not hold it up for long."""

from __future__ import annotations

from baylink.telemetry_setup import COMMAND_EXPORT_TIMEOUT_SECONDS, for_a_command
from observability.telemetry import TelemetrySettings


def test_a_command_waits_briefly_for_the_collector_unless_told_otherwise() -> None:
    settings = TelemetrySettings.from_environ("connector", {})

    assert settings.export_timeout_seconds is None
    assert for_a_command(settings, {}).export_timeout_seconds == COMMAND_EXPORT_TIMEOUT_SECONDS
    assert for_a_command(settings, {"OTEL_EXPORTER_OTLP_TIMEOUT": "30"}) == settings
    assert for_a_command(settings, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"}) == settings
