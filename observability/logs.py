"""Logs as one JSON object per line, carrying the trace and span of whatever was running, so a
log line leads to its trace and back.

``BAYLINK_LOG_FORMAT=text`` gives the classic one-line text form instead (for a terminal).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("json", "text")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = "%(levelname)s %(name)s %(message)s"


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` (hex, empty outside a span) and ``service`` to a record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        record.service = self.service
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        _JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC
    )


def configure_logging(
    service: str,
    level: str = "INFO",
    log_format: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """The root logger writes one line per record to ``stream`` (stderr)."""
    chosen = (log_format or os.environ.get("BAYLINK_LOG_FORMAT") or "json").lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"log format {chosen!r}: expected one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(TraceContextFilter(service))
    handler.setFormatter(json_formatter() if chosen == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
