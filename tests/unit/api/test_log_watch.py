"""The log watch wakes the streams waiting on it when the tail reports a change, shares one
follower between them, and stops following once nobody waits."""

from __future__ import annotations

import asyncio
import threading

from api.log_watch import LogWatch
from storage.delivery_tail import TailState

_HANG = 60.0  # a bound so that a broken watch fails the test instead of hanging it


class FakeTail:
    def __init__(self, changed: int) -> None:
        self.changed = changed
        self.reads = 0
        self.read = asyncio.Event()

    def catch_up(self) -> TailState:
        self.reads += 1
        self.read.set()
        return TailState(self.changed, 0, self.changed)

    async def reads_at_least(self, reads: int) -> None:
        while self.reads < reads:
            self.read.clear()
            await self.read.wait()


async def test_waiting_streams_wake_when_the_log_changes_after_what_they_saw() -> None:
    tail = FakeTail(changed=5)
    watch = LogWatch(tail.catch_up, interval=0)
    waiting = [asyncio.create_task(watch.wait_after(5, at_most=3600)) for _ in range(3)]

    await asyncio.wait_for(tail.reads_at_least(3), _HANG)
    assert not any(task.done() for task in waiting)  # nothing new after 5 yet

    tail.changed = 6
    await asyncio.wait_for(asyncio.gather(*waiting), _HANG)


async def test_a_stream_that_saw_less_than_the_log_holds_returns_at_once() -> None:
    tail = FakeTail(changed=9)
    watch = LogWatch(tail.catch_up, interval=0)

    await asyncio.wait_for(watch.wait_after(4, at_most=3600), _HANG)


async def test_a_stream_wakes_after_its_own_limit_without_a_change() -> None:
    tail = FakeTail(changed=5)
    watch = LogWatch(tail.catch_up, interval=0)

    await asyncio.wait_for(watch.wait_after(5, at_most=0.01), _HANG)


async def test_following_stops_once_nobody_waits_and_starts_again_for_the_next() -> None:
    tail = FakeTail(changed=5)
    watch = LogWatch(tail.catch_up, interval=0)
    await asyncio.wait_for(watch.wait_after(1, at_most=3600), _HANG)
    follower = watch._loops[asyncio.get_running_loop()].follower
    assert follower is not None

    await asyncio.wait_for(follower, _HANG)  # ends by itself: nobody waits

    tail.changed = 7
    await asyncio.wait_for(watch.wait_after(6, at_most=3600), _HANG)


class BlockingTail(FakeTail):
    """A tail whose reads wait until released, one by one, from the test."""

    def __init__(self, changed: int) -> None:
        super().__init__(changed)
        self.release = threading.Semaphore(0)

    def catch_up(self) -> TailState:
        self.release.acquire()
        return super().catch_up()


async def test_streams_asking_together_share_one_read_that_began_after_they_asked() -> None:
    tail = BlockingTail(changed=1)
    watch = LogWatch(tail.catch_up, interval=0)
    first = asyncio.create_task(watch.fresh())
    await asyncio.sleep(0)  # the first read is under way (blocked in its thread)
    tail.changed = 2  # recorded after the first read began: only a later read may see it
    later = [asyncio.create_task(watch.fresh()) for _ in range(5)]
    await asyncio.sleep(0)

    tail.release.release()
    assert (await asyncio.wait_for(first, _HANG)).changed in (1, 2)
    tail.release.release()
    states = await asyncio.wait_for(asyncio.gather(*later), _HANG)

    assert [state.changed for state in states] == [2] * 5
    assert tail.reads == 2  # one read for the five
