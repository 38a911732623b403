"""The delivery log entries of the streams an API serves, written many at a time.

A batch stored wakes every stream of its dataset, and each writes what it sent: a hundred
streams made a hundred small transactions per batch, each holding the store's write lock
(the one the ingest worker needs on SQLite). Pages sent meanwhile are written together
instead: while one write is under way, the next pages wait and go in the next one. A stream
still waits until its own page is written, as before.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from storage.delivery_feed import FeedPage
from storage.subscriptions import SubscriptionInfo

Sent = tuple[SubscriptionInfo, FeedPage, int]  # the page and the position it began after


@dataclass
class _Queue:
    pending: list[tuple[Sent, asyncio.Future[None]]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


class SentPages:
    """Collects pages from the streams of each event loop; ``write`` blocks (run in a
    thread) and records a list of pages in one transaction."""

    def __init__(self, write: Callable[[list[Sent]], None]) -> None:
        self._write = write
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def record(self, sent: Sent) -> None:
        """Returns once the page is in the delivery log; raises what the write raised."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        written: asyncio.Future[None] = loop.create_future()
        queue.pending.append((sent, written))
        if queue.writer is None or queue.writer.done():
            queue.writer = loop.create_task(self._write_all(queue))
        await written

    async def _write_all(self, queue: _Queue) -> None:
        while queue.pending:
            taken, queue.pending = queue.pending, []
            try:
                await asyncio.to_thread(self._write, [sent for sent, _ in taken])
            except Exception as error:
                for _, written in taken:
                    if not written.done():
                        written.set_exception(error)
            else:
                for _, written in taken:
                    if not written.done():
                        written.set_result(None)
