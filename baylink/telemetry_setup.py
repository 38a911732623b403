"""Telemetry at the command line's entry points: logs, traces, metrics and, for services, a
Prometheus endpoint on loopback."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
from collections.abc import Mapping

from prometheus_client import start_http_server

from baylink.errors import BaylinkCliError
from baylink.runtime.ports import LOOPBACK
from observability.logs import configure_logging
from observability.telemetry import (
    Telemetry,
    TelemetryConfigError,
    TelemetrySettings,
    configure,
)

METRICS_PORT_ENV = "BAYLINK_METRICS_PORT"
COMMAND_EXPORT_TIMEOUT_SECONDS = 3.0
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")


def start_telemetry(
    component: str,
    *,
    log_level: str | None = None,
    metrics_port: int | None = None,
) -> Telemetry:
    """Set up this process's telemetry as ``baylink-<component>``.

    ``log_level`` set: the process is a service and logs JSON lines (``BAYLINK_LOG_FORMAT``).
    ``metrics_port`` (or ``BAYLINK_METRICS_PORT``) set: Prometheus text is served there.
    """
    try:
        settings = TelemetrySettings.from_environ(component)
        if log_level is not None:
            configure_logging(settings.service_name, log_level)
    except (TelemetryConfigError, ValueError) as error:
        raise BaylinkCliError(str(error)) from None
    if log_level is None:
        settings = for_a_command(settings, os.environ)
        logging.getLogger("opentelemetry.exporter").setLevel(logging.ERROR)
    telemetry = configure(settings)
    atexit.register(telemetry.shutdown)
    port = metrics_port if metrics_port is not None else _port_from_environ()
    if port is not None and "prometheus" in settings.metrics_exporters:
        try:
            start_http_server(port, addr=LOOPBACK)
        except OSError as error:
            raise BaylinkCliError(
                f"cannot serve metrics on {LOOPBACK}:{port}: {error.strerror or error}"
            ) from None
    return telemetry


def for_a_command(settings: TelemetrySettings, environ: Mapping[str, str]) -> TelemetrySettings:
    """A command, not a service, flushes its spans at exit: an unreachable collector may cost
    it a few seconds (and one error line), unless a timeout was asked for."""
    if any(name in environ for name in _TIMEOUT_VARIABLES):
        return settings
    return dataclasses.replace(settings, export_timeout_seconds=COMMAND_EXPORT_TIMEOUT_SECONDS)


def _port_from_environ() -> int | None:
    raw = os.environ.get(METRICS_PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise BaylinkCliError(f"{METRICS_PORT_ENV}={raw!r} is not a port number")
    return int(raw)
