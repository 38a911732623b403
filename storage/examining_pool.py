"""Worker processes that examine ranges of the log ahead of a verifying pass (ADR 18).

Each worker has its own connection to the store, takes the next range itself from a counter
shared with the pass, and writes what it found to a pipe of its own. Nothing in the pass has
to run for a worker to get its next range or to hand over a result: with a process pool, the
pool's threads in the pass did both, and waited for the interpreter lock while the pass
examined ranges of its own, so the workers stood idle for about a quarter of the pass.

The pass examines a range itself whenever the one it needs next is not back yet and a range
is left to take, so it never waits on a worker that is still starting or busy. Workers take
ranges no further than a window ahead of the pass, which bounds what the pass holds.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from storage.log_examination import (
    UNSENDABLE,
    AuditLedger,
    Examined,
    examine_range,
    received,
    sendable,
)

# The shared counter and the job, as slots of one shared array of integers.
_NEXT = 0  # the next range index nobody has taken
_LIMIT = 1  # the last range index that may be taken (a window ahead of the pass)
_BASE = 2  # the job's first range index
_START = 3  # the job's first log position
_STOP = 4  # the job's last log position
_END = 5  # one past the job's last range index
_STOPPING = 6  # 1 once the pool closes
_SLOTS = 7

_INDEX_BYTES = 8
# Room in a worker's pipe for a few ranges' findings (about 230 KiB each), so a worker that
# finishes while the pass is busy writes them and goes on; where the system refuses, the
# default (64 KiB) only makes it wait for the pass.
_PIPE_BYTES = 1 << 20
_IDLE_WAIT = 0.05  # seconds a worker with nothing to take waits before looking again


def default_workers() -> int:
    """One worker per core, at most four, and none on one core: the pass links in order and
    examines ranges itself whenever the workers are behind, so it is idle only while it
    waits for the range it needs next."""
    cores = os.cpu_count() or 1
    return min(4, cores) if cores > 1 else 0


class ExaminingPool:
    """Worker processes examining ranges of ``span`` log positions ahead of the pass."""

    def __init__(self, event_store_url: str, workers: int, span: int = 1000) -> None:
        if workers < 1:
            raise ValueError(f"an examining pool needs at least one worker, not {workers}")
        self._span = span
        self._window = 4 * workers
        # Forking starts a worker in milliseconds where spawning re-imports for most of a
        # second; only Linux forks safely with the libraries loaded.
        context = (
            multiprocessing.get_context("fork")
            if sys.platform.startswith("linux")
            else multiprocessing.get_context("spawn")
        )
        # All zero: no job, so no range may be taken until ``examined`` sets one.
        self._shared = context.Array("q", [0] * _SLOTS)
        # A wake-up call for idle workers, at most one each outstanding.
        self._wake = context.BoundedSemaphore(workers)
        for _ in range(workers):
            self._wake.acquire()
        self._readers: dict[Connection, BaseProcess] = {}
        # A forked worker's collector would walk every object it inherited, writing to each
        # one's page, which the kernel then copies: frozen, they stay shared and unwalked
        # (a worker took about 9,000 page faults a pass, against 3,000 with them frozen).
        gc.freeze()
        try:
            self._start_workers(event_store_url, workers, context)
        finally:
            gc.unfreeze()
        self._workers = workers
        self._broken = False
        self._results: dict[int, list[Examined] | bytes] = {}
        # The pass's own connection, opened after forking so no worker inherits it.
        self._ledger = AuditLedger(event_store_url)

    def _start_workers(self, event_store_url: str, workers: int, context: Any) -> None:
        for _ in range(workers):
            reader, writer = context.Pipe(duplex=False)
            _widen(writer)
            process = context.Process(
                target=_work,
                args=(event_store_url, self._span, self._shared, self._wake, writer),
                daemon=True,
            )
            process.start()
            writer.close()
            self._readers[reader] = process

    def worker_pids(self) -> list[int]:
        """The worker processes running now."""
        return [p.pid for p in self._readers.values() if p.pid is not None and p.is_alive()]

    def position(self) -> int:
        """The newest position in the store."""
        return self._ledger.position()

    def examined(self, start: int, stop: int) -> Iterator[Examined]:
        """Every stored event from ``start`` through ``stop``, examined, in log order."""
        if stop < start:
            return
        count = (stop - start) // self._span + 1
        shared = self._shared
        with shared.get_lock():
            # A pass that stopped early left ranges untaken: the job renumbers from there.
            base = shared[_NEXT]
            shared[_BASE], shared[_START], shared[_STOP] = base, start, stop
            shared[_END] = base + count
            shared[_LIMIT] = base + self._window - 1
        self._results.clear()  # anything older belongs to an earlier job
        self._wake_workers()
        for index in range(base, base + count):
            examined = self._result(index, base, start, stop)
            with shared.get_lock():
                shared[_LIMIT] = index + self._window
            self._wake_workers()
            yield from examined

    def _result(self, index: int, base: int, start: int, stop: int) -> list[Examined]:
        results = self._results
        while index not in results:
            self._collect(block=False, base=base)
            if index in results:
                break
            taken = self._take()
            if taken is not None:
                results[taken] = self._examine(taken, base, start, stop)
            elif self._broken:
                # The range a dead worker held never comes: the pass examines it.
                results[index] = self._examine(index, base, start, stop)
            else:
                self._collect(block=True, base=base)
        result = results.pop(index)
        if isinstance(result, list):
            return result
        examined = received(result) if result != UNSENDABLE else None
        # A value of another kind than examining expects does not survive the trip.
        return examined if examined is not None else self._examine(index, base, start, stop)

    def _take(self) -> int | None:
        """The next range nobody has taken, now the pass's; None if none may be taken."""
        shared = self._shared
        with shared.get_lock():
            index = shared[_NEXT]
            if index > shared[_LIMIT] or index >= shared[_END]:
                return None
            shared[_NEXT] = index + 1
            return int(index)

    def _examine(self, index: int, base: int, start: int, stop: int) -> list[Examined]:
        first = start + (index - base) * self._span
        ledger = self._ledger
        return examine_range(
            ledger.recorder, ledger.mapper, first, min(stop, first + self._span - 1)
        )

    def _collect(self, block: bool, base: int) -> None:
        """Read what the workers have sent; with ``block``, wait until something comes."""
        if not self._readers:
            self._broken = True
            return
        sentinels = [p.sentinel for p in self._readers.values()]
        ready = wait([*self._readers, *sentinels], timeout=None if block else 0)
        if any(item in sentinels for item in ready):
            self._give_up()
            return
        for reader in ready:
            assert isinstance(reader, Connection)
            while reader.poll():
                try:
                    message = reader.recv_bytes()
                except (EOFError, OSError):
                    self._give_up()
                    return
                index = int.from_bytes(message[:_INDEX_BYTES], "little")
                if index >= base:
                    self._results[index] = message[_INDEX_BYTES:]

    def _give_up(self) -> None:
        """A worker died (killed, out of memory): the pass goes on by itself, examining
        every range whose findings it has not received."""
        self._broken = True
        self._stop_workers()

    def _wake_workers(self) -> None:
        for _ in range(self._workers):
            with contextlib.suppress(ValueError):  # enough calls are outstanding
                self._wake.release()

    def _stop_workers(self) -> None:
        with self._shared.get_lock():
            self._shared[_STOPPING] = 1
        # Closing the pipes first ends a worker blocked writing findings nobody will read.
        for reader in self._readers:
            reader.close()
        self._wake_workers()
        for process in self._readers.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._readers.clear()

    def close(self) -> None:
        self._stop_workers()
        self._ledger.close()


def _widen(pipe: Connection) -> None:
    with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux only
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _work(event_store_url: str, span: int, shared: Any, wake: Any, writer: Connection) -> None:
    """A worker's life: take the next range, examine it, send the findings, until closed."""
    parent = os.getppid()
    ledger = AuditLedger(event_store_url)
    try:
        while True:
            if os.getppid() != parent:
                return  # the pass is gone without closing the pool: nobody reads
            with shared.get_lock():
                if shared[_STOPPING]:
                    return
                index = shared[_NEXT]
                taken = index <= shared[_LIMIT] and index < shared[_END]
                if taken:
                    shared[_NEXT] = index + 1
                    first = shared[_START] + (index - shared[_BASE]) * span
                    last = min(shared[_STOP], first + span - 1)
            if not taken:
                wake.acquire(timeout=_IDLE_WAIT)
                continue
            try:
                sent = sendable(examine_range(ledger.recorder, ledger.mapper, first, last))
            except Exception:  # the pass examines the range again and meets the error itself
                sent = UNSENDABLE
            writer.send_bytes(index.to_bytes(_INDEX_BYTES, "little") + sent)
    except (BrokenPipeError, KeyboardInterrupt):
        return  # the pass closed the pool
    finally:
        ledger.close()
