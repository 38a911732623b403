"""A server-sent events reader for tests, following the HTML event-stream parsing rules
that matter here: fields until a blank line, ``id`` kept across events, comments apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    last_id: str | None  # the stream's last event id once this event is dispatched


@dataclass(frozen=True)
class SseComment:
    text: str


async def sse_events(
    response: httpx.Response, last_id: str | None = None
) -> AsyncIterator[SseEvent | SseComment]:
    event, data = "", []
    async for line in response.aiter_lines():
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
