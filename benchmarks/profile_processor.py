"""Profile the worker's hot path in-process: ``IngestProcessor.process`` over realistic batches.

No Kafka: messages are encoded exactly as ``publish_rows`` encodes them (rows spread over
partitions by key hash, ``wire.encode_rows``, the same headers) and handed to the processor
one by one with increasing offsets, against a fresh SQLite store in a temporary directory.

    python benchmarks/profile_processor.py [--records N] [--batch-size B] [--event-store URL]
        [--profiler none|cprofile|pyinstrument] [--top K] [--stages]

``--stages`` also times the steps of one message separately (decode, validate, duplicate
lookup, batch event, store) over the same messages, on a second fresh store.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Run as a file (python benchmarks/profile_processor.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workload import load_dataset, make_provenance, make_rows
from domain.dataset import DatasetDefinition
from domain.ingest import ChainHead, chain_id_for, next_batch
from domain.record import RecordValidator
from domain.region import RegionRegistry
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.processor import IngestProcessor
from streams.publisher import partition_of


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]]


def encode_messages(dataset: DatasetDefinition, records: int, batch_size: int) -> list[Message]:
    """The messages ``publish_rows`` would send for ``records`` rows, with their offsets."""
    rows = make_rows(records)
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, make_provenance(dataset), None)
    by_partition: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        by_partition.setdefault(partition_of(row, dataset), []).append(row)
    messages: list[Message] = []
    for partition in sorted(by_partition):
        part_rows = by_partition[partition]
        for offset, start in enumerate(range(0, len(part_rows), batch_size)):
            value = wire.encode_rows(part_rows[start : start + batch_size])
            messages.append(Message(dataset.ingest_topic, partition, offset, value, headers))
    return messages


@contextmanager
def fresh_store(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="baylink-profile-") as directory:
        yield f"sqlite:///{Path(directory) / 'events.sqlite'}"


def run_processor(
    url: str, dataset: DatasetDefinition, messages: list[Message], profiler: str, top: int
) -> tuple[float, str]:
    """Seconds to process every message, and the profile's report (empty without profiler)."""
    catalog = Catalog(url)
    ledger = IngestLedger(url)
    try:
        catalog.register(dataset)
        processor = IngestProcessor(ledger, catalog, RegionRegistry.default())
        # Warm caches (validator, chain heads) the way a running worker has them warm: the
        # first message is processed before the clock starts and not counted.
        first, rest = messages[0], messages[1:]
        processor.process(first.topic, first.partition, first.offset, first.value, first.headers)

        def work() -> None:
            _process_all(processor, rest)

        ledger_before = ledger.position()
        report = ""
        if profiler == "cprofile":
            prof = cProfile.Profile()
            started = time.perf_counter()
            prof.runcall(work)
            elapsed = time.perf_counter() - started
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
            report = out.getvalue()
        elif profiler == "pyinstrument":
            from pyinstrument import Profiler

            pyi = Profiler(interval=0.0005)
            started = time.perf_counter()
            pyi.start()
            work()
            pyi.stop()
            elapsed = time.perf_counter() - started
            report = pyi.output_text(unicode=False, color=False, show_all=False)
        else:
            started = time.perf_counter()
            work()
            elapsed = time.perf_counter() - started
        stored = ledger.position() - ledger_before
        if stored != len(rest):
            raise RuntimeError(f"stored {stored} batches for {len(rest)} messages")
        return elapsed, report
    finally:
        ledger.close()
        catalog.close()


def _process_all(processor: IngestProcessor, messages: list[Message]) -> None:
    for m in messages:
        processor.process(m.topic, m.partition, m.offset, m.value, m.headers)


def time_stages(url: str, dataset: DatasetDefinition, messages: list[Message]) -> dict[str, float]:
    """Seconds spent in each step of the processor's path, summed over all messages."""
    catalog = Catalog(url)
    ledger = IngestLedger(url)
    totals = dict.fromkeys(("decode", "validate", "dedupe", "batch_event", "store"), 0.0)
    try:
        catalog.register(dataset)
        validator = RecordValidator(dataset, RegionRegistry.default())
        heads: dict[int, ChainHead] = {}
        clock = time.perf_counter
        for m in messages:
            t0 = clock()
            batch = wire.decode(m.value, m.headers, dataset.id)
            t1 = clock()
            result = validator.validate(batch.rows, batch.provenance.region, datetime.now(UTC))
            t2 = clock()
            ids = [str(r[0]) for r in result.accepted]
            seen = ledger.existing_record_ids(ids)
            fresh = [r for r, i in zip(result.accepted, ids, strict=True) if i not in seen]
            t3 = clock()
            head = heads.get(m.partition) or ledger.chain_head(
                chain_id_for(dataset.id, m.partition)
            )
            event = next_batch(
                head,
                dataset_id=dataset.id,
                partition=m.partition,
                source=f"{m.topic}:{m.partition}@{m.offset}",
                provenance=batch.provenance,
                accepted=fresh,
                rejected=result.rejected,
            )
            t4 = clock()
            ledger.record(
                event,
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                record_ids=[str(r[0]) for r in fresh],
            )
            t5 = clock()
            heads[m.partition] = ChainHead.after(event)
            for key, spent in zip(
                totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                totals[key] += spent
    finally:
        ledger.close()
        catalog.close()
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--event-store", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--profiler", choices=("none", "cprofile", "pyinstrument"), default="none")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stages", action="store_true")
    args = parser.parse_args(argv)

    dataset = load_dataset()
    messages = encode_messages(dataset, args.records, args.batch_size)
    # The first message warms the processor up and is not timed.
    records = sum(len(wire.decode(m.value, m.headers, dataset.id).rows) for m in messages[1:])
    with fresh_store(args.event_store) as url:
        elapsed, report = run_processor(url, dataset, messages, args.profiler, args.top)
    print(
        f"IngestProcessor.process: {records} records in {len(messages)} messages "
        f"(batch size {args.batch_size}) in {elapsed:.3f} s = {records / elapsed:,.0f} records/s, "
        f"{elapsed / records * 1e6:.2f} us/record",
    )
    if args.stages:
        with fresh_store(args.event_store) as url:
            stages = time_stages(url, dataset, messages)
        for name, spent in stages.items():
            print(f"  {name:<12} {spent / records * 1e6:7.2f} us/record  ({spent:.3f} s)")
    if report:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
