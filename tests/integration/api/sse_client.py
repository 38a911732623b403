"""A server-sent events reader for tests, following the HTML event-stream parsing rules
that matter here: fields until a blank line, ``id`` kept across events, comments apart."""

from __future__ import annotations

import asyncio
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


class Listener:
    """Reads a stream's events in a task of its own, so waiting for the next one with a
    timeout does not cancel the reading (and with it the connection)."""

    def __init__(self, events: AsyncIterator[SseEvent | SseComment]) -> None:
        self._queue: asyncio.Queue[SseEvent | SseComment] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(events))

    async def _pump(self, events: AsyncIterator[SseEvent | SseComment]) -> None:
        async for item in events:
            self._queue.put_nowait(item)

    async def next(self, seconds: float) -> SseEvent | SseComment:
        """The next item; TimeoutError when none comes within ``seconds``."""
        return await asyncio.wait_for(self._queue.get(), seconds)

    async def within(self, seconds: float) -> list[SseEvent | SseComment]:
        """Every item that arrives within ``seconds``."""
        seen: list[SseEvent | SseComment] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                seen.append(await self.next(left))
            except TimeoutError:
                break
        return seen

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
