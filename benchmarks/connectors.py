"""Parser throughput: each connector's parser against the raw decode of the same input.

    python benchmarks/connectors.py [--records N] [--rounds R] [--only NAME,...] [--json]

For every format, one payload of N records is built once (generated, shaped like the real
feeds the tests use as fixtures). Then R rounds, each timing back to back:

- raw: the bare decode a hand-rolled reader would need anyway (``csv.reader``, ``json.loads``
  per line, protobuf ``ParseFromString``, an XML or JSON parse), touching every item;
- baylink: the connector's parser, through ``connectors.formats`` exactly as ``baylink ingest``
  calls it, producing typed rows with notes.

It reports median records/s of both, their ratio (baylink / raw: the price of typing, checking
and explaining every row), and the peak memory traced while the parser runs once. The top-level
``"ratio"`` is the lowest per-format ratio: the parser that costs most over its raw decode.

Progress and figures go to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/connectors.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.transit import gtfs_realtime_pb2

from benchmarks.workload import load_dataset, make_rows
from connectors.formats import ParseOptions, format_named
from domain.dataset import DatasetDefinition


@dataclass(frozen=True)
class Case:
    """One format: how to build its payload, and its raw decode."""

    format: str
    baseline: str
    build: Callable[[int], bytes]
    raw: Callable[[bytes], int]
    dataset: Callable[[], DatasetDefinition]
    options: ParseOptions = field(default_factory=ParseOptions)


def _text_rows(count: int) -> list[dict[str, Any]]:
    rows = make_rows(count, start=datetime(2026, 1, 1, tzinfo=UTC))
    for row in rows:
        row["observed_at"] = row["observed_at"].isoformat()
    return rows


def build_csv(count: int) -> bytes:
    rows = _text_rows(count)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def raw_csv(data: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(data.decode()))) - 1


def build_jsonl(count: int) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in _text_rows(count)).encode()


def raw_jsonl(data: bytes) -> int:
    return sum(1 for line in data.decode().splitlines() if json.loads(line))


def build_vehicle_positions(count: int) -> bytes:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = 1_767_225_600
    for i, row in enumerate(make_rows(count)):
        entity = feed.entity.add()
        entity.id = f"e{i}"
        vehicle = entity.vehicle
        vehicle.vehicle.id = row["sensor_id"]
        vehicle.timestamp = 1_767_225_600 + i
        vehicle.position.latitude = row["lat"]
        vehicle.position.longitude = row["lon"]
        vehicle.position.speed = row["speed"] / 3.6
        vehicle.trip.route_id = f"R{i % 40}"
    return feed.SerializeToString()


def raw_protobuf(data: bytes) -> int:
    """Parse, then read what a reader needs of each entity (upb parses sub-messages lazily)."""
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(data)
    count = 0
    for entity in feed.entity:
        vehicle = entity.vehicle
        position = vehicle.position
        if vehicle.vehicle.id and vehicle.timestamp and position.latitude and position.longitude:
            count += 1
    return count


def _vehicle_positions_dataset() -> DatasetDefinition:
    from connectors.datasets import GTFS_RT_VEHICLE_POSITIONS, load

    return load(GTFS_RT_VEHICLE_POSITIONS)


CASES: tuple[Case, ...] = (
    Case("csv", "csv.reader", build_csv, raw_csv, load_dataset),
    Case("jsonl", "json.loads per line", build_jsonl, raw_jsonl, load_dataset),
    Case(
        "gtfs-rt",
        "protobuf ParseFromString + field reads",
        build_vehicle_positions,
        raw_protobuf,
        _vehicle_positions_dataset,
    ),
)


@dataclass(frozen=True)
class Figures:
    format: str
    baseline: str
    records: int
    payload_bytes: int
    baylink_records_per_s: float
    raw_records_per_s: float
    parser_peak_mib: float

    @property
    def ratio(self) -> float:
        return self.baylink_records_per_s / self.raw_records_per_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "baseline": self.baseline,
            "records": self.records,
            "payload_bytes": self.payload_bytes,
            "baylink_records_per_s": round(self.baylink_records_per_s),
            "raw_records_per_s": round(self.raw_records_per_s),
            "ratio": round(self.ratio, 4),
            "parser_peak_mib": round(self.parser_peak_mib, 2),
        }


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = action()
    return time.perf_counter() - started, count


def measure(case: Case, records: int, rounds: int) -> Figures:
    data = case.build(records)
    dataset = case.dataset()
    fmt = format_named(case.format)

    def parse() -> int:
        return len(fmt.parse(data, dataset, case.options).rows)

    def raw() -> int:
        return case.raw(data)

    raw_times, parse_times = [], []
    for _ in range(rounds):
        raw_time, raw_count = _timed(raw)
        parse_time, parsed_count = _timed(parse)
        if parsed_count != records or raw_count != records:
            raise SystemExit(
                f"{case.format}: expected {records} records, the parser gave {parsed_count} "
                f"and the raw decode {raw_count}"
            )
        raw_times.append(raw_time)
        parse_times.append(parse_time)
    tracemalloc.start()
    parse()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Figures(
        format=case.format,
        baseline=case.baseline,
        records=records,
        payload_bytes=len(data),
        baylink_records_per_s=records / statistics.median(parse_times),
        raw_records_per_s=records / statistics.median(raw_times),
        parser_peak_mib=peak / 2**20,
    )


def run(records: int, rounds: int, only: Sequence[str]) -> dict[str, Any]:
    chosen = [case for case in CASES if not only or case.format in only]
    unknown = set(only) - {case.format for case in CASES}
    if unknown:
        raise SystemExit(f"no benchmark for {sorted(unknown)}; known: {[c.format for c in CASES]}")
    results: list[Figures] = []
    for case in chosen:
        print(f"{case.format}: {records} records, {rounds} rounds ...", file=sys.stderr)
        figures = measure(case, records, rounds)
        print(
            f"  baylink {figures.baylink_records_per_s:,.0f} records/s, raw "
            f"({figures.baseline}) {figures.raw_records_per_s:,.0f} records/s, ratio "
            f"{figures.ratio:.3f}, parser peak {figures.parser_peak_mib:.1f} MiB",
            file=sys.stderr,
        )
        results.append(figures)
    worst = min(results, key=lambda f: f.ratio)
    return {
        "records": records,
        "rounds": rounds,
        "formats": [figures.as_dict() for figures in results],
        "ratio": round(worst.ratio, 4),
        "ratio_format": worst.format,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, help="default: %(default)s")
    parser.add_argument("--rounds", type=int, default=5, help="default: %(default)s")
    parser.add_argument("--only", default="", help="comma-separated format names")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    result = run(args.records, args.rounds, only)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
