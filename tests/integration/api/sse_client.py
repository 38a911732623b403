"""A server-sent events reader for tests, following the HTML event-stream parsing rules
that matter here: fields until a blank line, ``id`` kept across events, comments apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    last_id: str | None  # the stream's last event id once this event is dispatched


@dataclass(frozen=True)
class SseComment:
    text: str


async def sse_events(
    lines: AsyncIterator[str], last_id: str | None = None
) -> AsyncIterator[SseEvent | SseComment]:
    """The events of a stream's lines (``response.aiter_lines()``); an event cut off before
    its blank line is never dispatched, as in a browser."""
    event, data = "", list[str]()
    async for line in lines:
        if line == "":
            if data:
                yield SseEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
        elif line.startswith(":"):
            yield SseComment(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                last_id = value


async def first_lines(lines: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    """The first ``count`` lines: the client hangs up there."""
    if count <= 0:
        return
    seen = 0
    async for line in lines:
        yield line
        seen += 1
        if seen == count:
            return
