"""Crash points for recovery tests: kill this process at a named moment of the ingest path.

Set ``BAYLINK_STREAMS_CRASH_AT=<point>:<n>`` to SIGKILL the worker the n-th time it reaches
``<point>``. Unset (always, in production) it costs one dictionary lookup per message.
"""

from __future__ import annotations

import os
import signal

ENV = "BAYLINK_STREAMS_CRASH_AT"
BEFORE_STORE_COMMIT = "before-store-commit"
AFTER_STORE_COMMIT = "after-store-commit"

_counts: dict[str, int] = {}


def reached(point: str) -> None:
    """SIGKILL ourselves if the configured crash point is this one and its count is due."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
