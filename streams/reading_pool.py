"""Reading messages in other processes, so validation runs beside the store's writes.

The worker's CPU goes mostly to decoding and validating records, under one interpreter
lock. A pool of reader processes does that part: each message goes out as bytes and comes
back as its encoded records and rejections (streams.message_reading), while the worker
stores what was read before. Nothing here touches the store, so a reader that dies loses
nothing: the batch is read again when the worker retries it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from connectors.crs import ProjNormaliser
from connectors.geometry_inspector import ShapelyInspector
from domain.dataset import DatasetDefinition
from domain.geo import CoordinateNormaliser
from domain.record import RecordValidator
from domain.region import RegionRegistry
from streams.garbage_collection import tune_garbage_collector
from streams.message_reading import Message, Reading, read_message

# Set in each reader process by _start_reader.
_regions: list[RegionRegistry] = []
_validators: dict[str, tuple[DatasetDefinition, RecordValidator]] = {}


def make_validator(
    definition: DatasetDefinition, regions: RegionRegistry, normaliser: CoordinateNormaliser
) -> RecordValidator:
    return RecordValidator(definition, regions, normaliser, geometry_inspector=ShapelyInspector())


def _start_reader(regions: RegionRegistry, parent: int) -> None:
    _regions[:] = [regions]
    # Ctrl-C and a supervisor's SIGTERM reach the whole process group: the worker stops its
    # readers itself, after what they are reading.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A SIGKILLed worker cannot stop its pool, and a reader blocked on the pool's queue never
    # sees it go (the queue's pipe has writers in every reader): the reader leaves by itself.
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    tune_garbage_collector()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> bool:
    return bool(_regions)


def _read_in_reader(
    topic: str,
    partition: int,
    messages: Sequence[Message],
    dataset_id: str,
    definition: DatasetDefinition | None,
    now: datetime,
) -> list[Reading]:
    validator = None
    if definition is not None:
        cached = _validators.get(dataset_id)
        if cached is None or cached[0] != definition:
            if not _regions:
                raise RuntimeError("a reader process was not started by ReadingPool")
            cached = (definition, make_validator(definition, _regions[0], ProjNormaliser()))
            _validators[dataset_id] = cached
        validator = cached[1]
    return [read_message(topic, partition, m, dataset_id, validator, now) for m in messages]


@dataclass(frozen=True, slots=True)
class PendingReadings:
    """Readings on their way; ``result`` waits for them (and raises what a reader raised)."""

    parts: list[Future[list[Reading]]]

    @classmethod
    def done(cls, readings: list[Reading]) -> PendingReadings:
        ready: Future[list[Reading]] = Future()
        ready.set_result(readings)
        return cls([ready])

    def result(self) -> list[Reading]:
        return [reading for part in self.parts for reading in part.result()]


class ReadingPool:
    """``processes`` reader processes (spawned: the worker has threads, which fork would
    copy in whatever state they were in)."""

    def __init__(self, processes: int, regions: RegionRegistry) -> None:
        self.processes = processes
        self._regions = regions
        self._executor = self._started()

    def _started(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_reader,
            initargs=(self._regions, os.getpid()),
        )

    def read(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Message],
        dataset_id: str,
        definition: DatasetDefinition | None,
        now: datetime,
    ) -> PendingReadings:
        """Readings of ``messages``, in their order, split over the readers."""
        chunks = _split(messages, self.processes)
        try:
            parts = [
                self._executor.submit(
                    _read_in_reader, topic, partition, chunk, dataset_id, definition, now
                )
                for chunk in chunks
            ]
        except BrokenProcessPool:
            # A reader died (killed, out of memory): what it was reading failed and is being
            # retried; start new readers for it.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._started()
            return self.read(topic, partition, messages, dataset_id, definition, now)
        return PendingReadings(parts)

    @property
    def pids(self) -> list[int]:
        """The readers' process ids (those started so far)."""
        return sorted(self._executor._processes or {})

    def warm_up(self) -> None:
        """Start every reader now rather than at the first message (a spawned reader imports
        the domain and the geometry libraries, which takes a second or two)."""
        for part in [self._executor.submit(_ready) for _ in range(self.processes)]:
            part.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _split(messages: Sequence[Message], parts: int) -> list[Sequence[Message]]:
    size = max(1, -(-len(messages) // max(parts, 1)))
    return [messages[i : i + size] for i in range(0, len(messages), size)] or [messages]
