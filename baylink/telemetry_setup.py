"""Telemetry at the command line's entry points: logs, traces, metrics and, for services, a
Prometheus endpoint on loopback."""

from __future__ import annotations

import atexit
import os

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


def _port_from_environ() -> int | None:
    raw = os.environ.get(METRICS_PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise BaylinkCliError(f"{METRICS_PORT_ENV}={raw!r} is not a port number")
    return int(raw)
