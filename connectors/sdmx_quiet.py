"""Calling sdmx1 without its side effects: what it prints, logs or warns is kept, not shown.

On input it cannot read, sdmx1's XML reader prints its parse stacks to stdout; it logs
warnings such as "no column detected" and may raise Python warnings. A connector's output is
its ParsedPayload, so these are collected and the parser turns them into notes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

_LOGGER = logging.getLogger("sdmx")


class _Collector(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def quiet_sdmx() -> Iterator[list[str]]:
    """Run sdmx1 with stdout, its warning logs and Python warnings collected into a list."""
    messages: list[str] = []
    collector = _Collector(messages)
    propagate = _LOGGER.propagate
    _LOGGER.addHandler(collector)
    _LOGGER.propagate = False
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(w.message) for w in caught)
    finally:
        _LOGGER.removeHandler(collector)
        _LOGGER.propagate = propagate


def describe_error(error: BaseException) -> str:
    """One line naming what sdmx1 (or lxml under it) raised."""
    cause = error.__cause__ or error
    text = str(cause).splitlines()[0][:200] if str(cause) else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
