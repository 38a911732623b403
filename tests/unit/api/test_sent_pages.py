"""Pages sent by streams at once are written to the delivery log together, and each stream
learns whether its own page was written."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

import pytest

from api.sent_pages import Sent, SentPages

_HANG = 60.0


def _sent(n: int) -> Sent:
    # The writer only passes pages through: a stand-in tells them apart.
    return cast(Sent, ("subscription", f"page-{n}", n))


class Log:
    def __init__(self) -> None:
        self.writes: list[list[Sent]] = []
        self.release = threading.Semaphore(0)
        self.fail = False

    def write(self, sent: list[Sent]) -> None:
        self.release.acquire()
        if self.fail:
            raise OSError("the store is down")
        self.writes.append(sent)


async def test_pages_sent_during_a_write_go_together_in_the_next() -> None:
    log = Log()
    pages = SentPages(log.write)
    first = asyncio.create_task(pages.record(_sent(0)))
    await asyncio.sleep(0)  # its write is under way
    others = [asyncio.create_task(pages.record(_sent(n))) for n in range(1, 4)]
    await asyncio.sleep(0)

    log.release.release()
    log.release.release()
    await asyncio.wait_for(asyncio.gather(first, *others), _HANG)

    assert log.writes == [[_sent(0)], [_sent(1), _sent(2), _sent(3)]]


async def test_a_failed_write_fails_every_page_in_it() -> None:
    log = Log()
    log.fail = True
    pages = SentPages(log.write)
    waiting = [asyncio.create_task(pages.record(_sent(n))) for n in range(2)]
    await asyncio.sleep(0)

    log.release.release()
    for task in waiting:
        with pytest.raises(OSError, match="store is down"):
            await asyncio.wait_for(task, _HANG)
