"""Wakes the streams of an API process when the log moves, instead of each polling the store.

One follower task per event loop reads the log through the delivery feed's tail every
``interval`` while any stream waits, and wakes them all when a batch or a change to the
policy has been recorded. A stream also wakes after its own timeout, as a fallback, so a
change the tail does not count (pausing a subscription, say) is still seen in good time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from storage.delivery_tail import TailState

FOLLOW_SECONDS = 0.02
_log = logging.getLogger("baylink.api")


@dataclass
class _LoopWatch:
    condition: asyncio.Condition = field(default_factory=asyncio.Condition)
    changed: int = 0
    waiters: int = 0
    follower: asyncio.Task[None] | None = None
    reading: asyncio.Task[TailState] | None = None  # the read of the tail under way
    next: asyncio.Task[TailState] | None = None  # the read to begin when it ends


class LogWatch:
    """Shared by the streams of one API; ``catch_up`` is blocking and run in a thread."""

    def __init__(self, catch_up: Callable[[], TailState], interval: float = FOLLOW_SECONDS):
        self._catch_up = catch_up
        self.interval = interval
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatch] = (
            weakref.WeakKeyDictionary()
        )

    async def fresh(self) -> TailState:
        """The tail, caught up after this call began. Streams asking meanwhile share one
        read, made in one worker thread while they wait on the event loop: a read under way
        began before this call, so this call waits for the one after it."""
        loop = asyncio.get_running_loop()
        watch = self._watch(loop)
        if watch.reading is None or watch.reading.done():
            watch.reading = loop.create_task(asyncio.to_thread(self._catch_up))
            return await asyncio.shield(watch.reading)
        if watch.next is None:
            watch.next = loop.create_task(self._read_after(watch, watch.reading))
        return await asyncio.shield(watch.next)

    async def _read_after(self, watch: _LoopWatch, before: asyncio.Task[TailState]) -> TailState:
        await asyncio.wait([before])
        watch.reading, watch.next = watch.next, None  # this read is now the one under way
        return await asyncio.to_thread(self._catch_up)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> _LoopWatch:
        watch = self._loops.get(loop)
        if watch is None:
            watch = self._loops[loop] = _LoopWatch()
        return watch

    async def wait_after(self, seen: int, at_most: float) -> None:
        """Returns once the log has changed after ``seen`` (a ``TailState.changed``), or
        after ``at_most`` seconds."""
        loop = asyncio.get_running_loop()
        watch = self._watch(loop)
        watch.waiters += 1
        try:
            if watch.follower is None or watch.follower.done():
                watch.follower = loop.create_task(self._follow(watch))
            async with watch.condition:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        watch.condition.wait_for(lambda: watch.changed > seen), at_most
                    )
        finally:
            watch.waiters -= 1

    async def _follow(self, watch: _LoopWatch) -> None:
        while watch.waiters > 0:
            try:
                state = await self.fresh()
            except Exception:
                # The store is unreachable for now: the streams' own timeouts carry on.
                _log.warning("cannot follow the notification log", exc_info=True)
            else:
                if state.changed > watch.changed:
                    async with watch.condition:
                        watch.changed = state.changed
                        watch.condition.notify_all()
            await asyncio.sleep(self.interval)
