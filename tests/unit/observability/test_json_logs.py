"""Log lines are JSON objects that carry the trace and span they were written in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from observability.logs import configure_logging
from tests.support.telemetry import in_memory_telemetry


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("baylink-test", "INFO", "json", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_a_line_inside_a_span_names_its_trace_and_span(captured: io.StringIO) -> None:
    in_memory_telemetry()
    with trace.get_tracer("tests").start_as_current_span("work") as span:
        logging.getLogger("baylink.test").warning("late reading from %s", "gd-shenzhen")
    context = span.get_span_context()

    [line] = captured.getvalue().splitlines()
    record = json.loads(line)

    assert record["message"] == "late reading from gd-shenzhen"
    assert record["level"] == "WARNING"
    assert record["logger"] == "baylink.test"
    assert record["service"] == "baylink-test"
    assert record["trace_id"] == f"{context.trace_id:032x}"
    assert record["span_id"] == f"{context.span_id:016x}"
    assert record["time"].endswith("+00:00")


def test_an_error_with_a_traceback_is_still_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad payload")
    except ValueError:
        logging.getLogger("baylink.test").exception("could not store")

    lines = captured.getvalue().splitlines()

    assert len(lines) == 1
    assert json.loads(lines[0])["trace_id"] == ""
    assert "ValueError: bad payload" in json.loads(lines[0])["exc_info"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        configure_logging("baylink-test", "INFO", "xml", io.StringIO())
