"""Query latency: baylink's query service against DuckDB reading the same snapshot files.

    python benchmarks/query.py [--rows 10000000] [--repeat 15] [--json]
                               [--keep DIR] [--profile PATH]

What it does, all in one run:

1. setup (timed, progress on stderr): a SQLite event store and a LocalObjectStore in a
   temporary directory (or ``--keep DIR``); registers the sensor-readings dataset
   (tests/fixtures/datasets/sensor-readings.yaml); stores N normalised records
   (``[record_id, region, *values]``, times as microseconds) as batch events of 10,000 built
   with ``domain.ingest.next_batch`` and stored with ``IngestLedger.record`` at fake Kafka
   positions, round-robin over the dataset's partitions, 1,500 sensors in 3 regions over 30
   days; then ``SnapshotBuilder.run_once()``: its rate (records/s), the Parquet bytes on disk
   and the Arrow in-memory size (``Table.nbytes``) of the same records;
2. measured over the same files, one warm-up then ``--repeat`` runs of each, p50 and p95:

   a. aggregate: count and mean speed per region over a 7-day window and a bbox. QueryService
      has no aggregate method, so baylink's figure is paging through the filtered records
      (``QueryService.records``, limit 10,000, fields region and speed, following
      ``next_cursor``) and aggregating the pages with pyarrow compute; DuckDB runs one
      GROUP BY over ``read_parquet(..., hive_partitioning = true)``;
   b. page: the first 1,000 records of one region and one UTC day, ordered by
      (observed_at, record_id), every field: ``QueryService.records`` against DuckDB's
      ORDER BY ... LIMIT 1000 (to an Arrow table, as baylink answers).

   Both answers are checked to agree (counts, means, record ids) before they are timed.

``--keep DIR`` builds the store in DIR and leaves it there; a later run with the same DIR and
``--rows`` reuses it and skips the setup (its figures are then those of the first run).
DuckDB keeps Parquet footers between queries (``parquet_metadata_cache``), as baylink keeps
its opened fragments; ``--no-duckdb-metadata-cache`` measures DuckDB's default instead.
``--profile PATH`` writes a cProfile of one more run of the slower baylink query to PATH.

Progress and figures go to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import yaml

# Run as a file (python benchmarks/query.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.dataset import DatasetDefinition
from domain.ingest import ChainHead, chain_id_for, next_batch
from domain.provenance import Provenance
from domain.record import NormalisedRecord, record_id_for, to_micros
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.object_store_factory import open_object_store
from storage.parquet_snapshot import record_schema
from storage.query import BoundingBox, QueryService
from storage.snapshots import SnapshotBuilder, SnapshotLedger, snapshot_prefix
from streams import wire

DATASET_FILE = (
    Path(__file__).resolve().parent.parent / "tests/fixtures/datasets/sensor-readings.yaml"
)
REGIONS: tuple[tuple[str, float, float], ...] = (
    # region, centre latitude, centre longitude
    ("hk", 22.32, 114.17),
    ("gd-shenzhen", 22.54, 114.06),
    ("mo", 22.19, 113.54),
)
SENSORS_PER_REGION = 500
BATCH_SIZE = 10_000
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
# The aggregate: 7 days in the middle of the month, a box over parts of all three regions.
AGGREGATE_START = FIRST_DAY + timedelta(days=10)
AGGREGATE_END = AGGREGATE_START + timedelta(days=7)
AGGREGATE_BBOX = BoundingBox(113.52, 22.17, 114.17, 22.57)
# The page: one region, one day.
PAGE_REGION = "hk"
PAGE_START = FIRST_DAY + timedelta(days=20)
PAGE_END = PAGE_START + timedelta(days=1)
PAGE_LIMIT = 1_000
SETUP_MARKER = "setup.json"
MB = 1024 * 1024

AGGREGATE_PATH = (
    "QueryService.aggregate (the service behind GET /v1/datasets/{id}/aggregate): one scan of "
    "the candidate snapshot files reading region and speed, plus the tail, then group_by"
)


class BenchmarkError(Exception):
    """The benchmark could not run or its answers disagree."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    rows: int
    repeat: int
    as_json: bool
    keep: Path | None
    profile: Path | None
    duckdb_metadata_cache: bool = True


@dataclass(frozen=True)
class Setup:
    """The stores the setup filled and what it measured."""

    event_store_url: str
    object_store_url: str
    snapshot_dir: Path
    dataset_id: str
    rows: int
    ingest_seconds: float
    snapshot_seconds: float
    snapshot_bytes: int
    arrow_bytes: int
    files: int


# --- setup -----------------------------------------------------------------------------------


def load_dataset() -> DatasetDefinition:
    document: Any = yaml.safe_load(DATASET_FILE.read_text(encoding="utf-8"))
    return DatasetDefinition.from_dict(document)


def provenance_for(dataset: DatasetDefinition, batch: int) -> Provenance:
    label = f"query-benchmark-{batch}"
    return Provenance(
        source_uri=f"bench://{dataset.id}/{label}",
        received_at=datetime.now(UTC),
        payload_sha256=hashlib.sha256(label.encode()).hexdigest(),
        connector="baylink-benchmark",
        connector_version="1",
        region=dataset.owner_region,
        wire_schema_version=wire.WIRE_SCHEMA_VERSION,
    )


class Workload:
    """Normalised sensor readings: sensor ``i % 1500`` reads at ``FIRST_DAY + step * (i //
    1500)``, so N rows cover 30 days whatever N is, in time order."""

    def __init__(self, dataset_id: str, rows: int, seed: int = 7) -> None:
        self.dataset_id = dataset_id
        self.rows = rows
        self.seed = seed
        rng = random.Random(seed)
        self.sensors = [
            (
                region,
                f"{region}-s{n:04d}",
                lat + rng.uniform(-0.05, 0.05),
                lon + rng.uniform(-0.05, 0.05),
            )
            for region, lat, lon in REGIONS
            for n in range(SENSORS_PER_REGION)
        ]
        readings = -(-rows // len(self.sensors))
        self.step_micros = DAYS * 86_400_000_000 // readings

    def batch(self, index: int) -> list[NormalisedRecord]:
        """Records ``[index * BATCH_SIZE, ...)``, as the validator would have normalised them."""
        rng = random.Random(self.seed * 1_000_003 + index)
        sensors = self.sensors
        count = len(sensors)
        first = to_micros(FIRST_DAY)
        step = self.step_micros
        operators = [f"op-{n:03d}" for n in range(1000)]
        records: list[NormalisedRecord] = []
        start = index * BATCH_SIZE
        for i in range(start, min(start + BATCH_SIZE, self.rows)):
            region, sensor_id, lat, lon = sensors[i % count]
            micros = first + step * (i // count)
            records.append(
                [
                    record_id_for(self.dataset_id, [sensor_id, micros], micros),
                    region,
                    sensor_id,
                    micros,
                    round(lat + (rng.random() - 0.5) * 2e-4, 6),
                    round(lon + (rng.random() - 0.5) * 2e-4, 6),
                    round(rng.random() * 120.0, 1),
                    rng.randrange(400),
                    rng.random() < 0.02,
                    operators[rng.randrange(1000)],
                ]
            )
        return records


def store_records(event_store_url: str, dataset: DatasetDefinition, rows: int) -> None:
    """N records as batch events, round-robin over the dataset's partitions."""
    workload = Workload(dataset.id, rows)
    ledger = IngestLedger(event_store_url)
    try:
        heads = {
            p: ChainHead.genesis(chain_id_for(dataset.id, p)) for p in range(dataset.partitions)
        }
        offsets = dict.fromkeys(heads, -1)
        batches = -(-rows // BATCH_SIZE)
        started = last_report = time.perf_counter()
        for index in range(batches):
            partition = index % dataset.partitions
            records = workload.batch(index)
            batch = next_batch(
                heads[partition],
                dataset_id=dataset.id,
                partition=partition,
                source=f"bench://{dataset.id}",
                provenance=provenance_for(dataset, index),
                accepted=records,
                rejected=[],
            )
            offsets[partition] += 1
            ledger.record(
                batch,
                topic=dataset.ingest_topic,
                partition=partition,
                offset=offsets[partition],
                record_ids=[str(r[0]) for r in records],
            )
            heads[partition] = ChainHead.after(batch)
            now = time.perf_counter()
            if now - last_report >= 10 or index + 1 == batches:
                last_report = now
                done = min((index + 1) * BATCH_SIZE, rows)
                log(f"  stored {done:,}/{rows:,} records ({done / (now - started):,.0f} records/s)")
    finally:
        ledger.close()


def arrow_table(snapshot_dir: Path, dataset: DatasetDefinition) -> pa.Table:
    """Every record of the snapshot as one Arrow table with the record schema."""
    partitioning = ds.partitioning(
        pa.schema([("region", pa.string()), ("date", pa.string())]), flavor="hive"
    )
    files = sorted(str(p) for p in snapshot_dir.glob("region=*/date=*/part-*.parquet"))
    dataset_ = ds.dataset(
        files, format="parquet", partitioning=partitioning, partition_base_dir=str(snapshot_dir)
    )
    return dataset_.to_table(columns=record_schema(dataset).names)


def run_setup(workdir: Path, rows: int) -> Setup:
    marker = workdir / SETUP_MARKER
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved["rows"] != rows:
            raise BenchmarkError(f"{workdir} holds {saved['rows']:,} rows, not {rows:,}")
        log(f"setup: reusing the store in {workdir}")
        return Setup(**{**saved, "snapshot_dir": Path(saved["snapshot_dir"])})
    if any(workdir.iterdir()):
        raise BenchmarkError(f"{workdir} is neither empty nor a store this benchmark built")
    event_store_url = f"sqlite:///{workdir / 'events.sqlite'}"
    object_store_url = (workdir / "objects").as_uri()
    dataset = load_dataset()
    catalog = Catalog(event_store_url)
    try:
        catalog.register(dataset)
    finally:
        catalog.close()

    log(f"setup: storing {rows:,} records in batches of {BATCH_SIZE:,} ...")
    started = time.perf_counter()
    store_records(event_store_url, dataset, rows)
    ingest_seconds = time.perf_counter() - started

    log("setup: building the snapshot ...")
    snapshot_ledger, catalog = SnapshotLedger(event_store_url), Catalog(event_store_url)
    try:
        builder = SnapshotBuilder(snapshot_ledger, catalog, open_object_store(object_store_url))
        started = time.perf_counter()
        manifests = builder.run_once()
        snapshot_seconds = time.perf_counter() - started
    finally:
        snapshot_ledger.close()
        catalog.close()
    if len(manifests) != 1 or manifests[0].row_count != rows:
        raise BenchmarkError(f"expected one snapshot of {rows:,} rows, got {manifests}")
    manifest = manifests[0]
    snapshot_dir = workdir / "objects" / snapshot_prefix(dataset, manifest.snapshot_id)
    parts = list(snapshot_dir.glob("region=*/date=*/part-*.parquet"))
    snapshot_bytes = sum(p.stat().st_size for p in parts)
    if len(parts) != len(manifest.files) or snapshot_bytes != sum(f.bytes for f in manifest.files):
        raise BenchmarkError("the snapshot's files on disk do not match its manifest")
    log("setup: reading the snapshot into Arrow for its in-memory size ...")
    table = arrow_table(snapshot_dir, dataset)
    if table.num_rows != rows:
        raise BenchmarkError(f"the snapshot's files hold {table.num_rows:,} rows, not {rows:,}")
    arrow_bytes = int(table.nbytes)
    del table
    setup = Setup(
        event_store_url=event_store_url,
        object_store_url=object_store_url,
        snapshot_dir=snapshot_dir,
        dataset_id=dataset.id,
        rows=rows,
        ingest_seconds=ingest_seconds,
        snapshot_seconds=snapshot_seconds,
        snapshot_bytes=snapshot_bytes,
        arrow_bytes=arrow_bytes,
        files=len(parts),
    )
    marker.write_text(
        json.dumps({**setup.__dict__, "snapshot_dir": str(snapshot_dir)}, sort_keys=True)
    )
    return setup


# --- the queries -----------------------------------------------------------------------------

Aggregate = dict[str, tuple[int, float]]
"""Per region: count and mean speed."""


def baylink_aggregate(service: QueryService, dataset_id: str) -> tuple[Aggregate, int]:
    """Count and mean speed per region through QueryService.aggregate; returns the aggregate
    and the number of calls (always one: there is no paging)."""
    result = service.aggregate(
        dataset_id,
        start=AGGREGATE_START,
        end=AGGREGATE_END,
        bbox=AGGREGATE_BBOX,
        group_by=["region"],
        metrics=["count", "mean:speed"],
    )
    table = result.table
    return _aggregate_of(table["region"], table["count"], table["mean_speed"]), 1


def _aggregate_of(regions: Any, counts: Any, means: Any) -> Aggregate:
    return {
        str(r): (int(c), float(m))
        for r, c, m in zip(regions.to_pylist(), counts.to_pylist(), means.to_pylist(), strict=True)
    }


class DuckQueries:
    """The same two queries as SQL over the snapshot's Parquet files."""

    def __init__(
        self, snapshot_dir: Path, field_names: Sequence[str], metadata_cache: bool = True
    ) -> None:
        self.connection = duckdb.connect()
        # Keep Parquet footers between queries, as baylink keeps its opened fragments.
        self.connection.execute(f"SET parquet_metadata_cache = {str(metadata_cache).lower()}")
        source = (
            f"read_parquet('{snapshot_dir.as_posix()}/region=*/date=*/part-*.parquet', "
            "hive_partitioning = true)"
        )
        self.aggregate_sql = (
            "SELECT region, count(*) AS n, avg(speed) AS mean_speed "
            f"FROM {source} WHERE observed_at >= $start AND observed_at < $end "
            "AND lon BETWEEN $min_lon AND $max_lon AND lat BETWEEN $min_lat AND $max_lat "
            "GROUP BY region ORDER BY region"
        )
        columns = ", ".join(["record_id", "region", *field_names])
        self.page_sql = (
            f"SELECT {columns} FROM {source} "
            "WHERE region = $region AND observed_at >= $start AND observed_at < $end "
            f"ORDER BY observed_at, record_id LIMIT {PAGE_LIMIT}"
        )

    def close(self) -> None:
        self.connection.close()

    def aggregate(self) -> Aggregate:
        box = AGGREGATE_BBOX
        table = self._arrow(
            self.aggregate_sql,
            {
                "start": AGGREGATE_START,
                "end": AGGREGATE_END,
                "min_lon": box.min_lon,
                "max_lon": box.max_lon,
                "min_lat": box.min_lat,
                "max_lat": box.max_lat,
            },
        )
        return _aggregate_of(table["region"], table["n"], table["mean_speed"])

    def page(self) -> pa.Table:
        return self._arrow(
            self.page_sql, {"region": PAGE_REGION, "start": PAGE_START, "end": PAGE_END}
        )

    def _arrow(self, sql: str, parameters: dict[str, object]) -> pa.Table:
        return self.connection.sql(sql, params=parameters).to_arrow_table()


def baylink_page(service: QueryService, dataset_id: str) -> pa.Table:
    return service.records(
        dataset_id, start=PAGE_START, end=PAGE_END, region=PAGE_REGION, limit=PAGE_LIMIT
    ).table


def check_agree(baylink: Aggregate, duck: Aggregate, page: pa.Table, duck_page: pa.Table) -> None:
    if sorted(baylink) != sorted(duck):
        raise BenchmarkError(f"aggregate regions differ: baylink {baylink}, DuckDB {duck}")
    for region, (count, mean) in baylink.items():
        duck_count, duck_mean = duck[region]
        if count != duck_count or abs(mean - duck_mean) > 1e-9 * max(1.0, abs(mean)):
            raise BenchmarkError(
                f"aggregate of {region} differs: baylink {count}, {mean}; "
                f"DuckDB {duck_count}, {duck_mean}"
            )
    if page.num_rows != PAGE_LIMIT:
        raise BenchmarkError(f"baylink's page holds {page.num_rows} records, not {PAGE_LIMIT}")
    if page["record_id"].to_pylist() != duck_page["record_id"].to_pylist():
        raise BenchmarkError("the pages of baylink and DuckDB hold different records")
    times = pc.equal(page["observed_at"], duck_page["observed_at"].cast(page["observed_at"].type))
    if not pc.all(times).as_py():
        raise BenchmarkError("the pages of baylink and DuckDB differ in observed_at")


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p95_ms: float
    runs_ms: list[float]


def timed(run: Callable[[], object], repeat: int) -> Timing:
    """One warm-up run, then ``repeat`` timed runs."""
    run()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) * 1000)
    return Timing(statistics.median(runs), percentile(runs, 95), runs)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@contextmanager
def query_service(setup: Setup) -> Iterator[QueryService]:
    """A QueryService opened as the API opens it (api.services._open)."""
    store = open_object_store(setup.object_store_url)
    catalog = Catalog(setup.event_store_url)
    snapshots = SnapshotLedger(setup.event_store_url)
    ingest = IngestLedger(setup.event_store_url)
    service = QueryService(catalog, snapshots, ingest, store)
    try:
        yield service
    finally:
        service.close()


def profile_text(run: Callable[[], object], lines: int = 40) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def measure(options: Options, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    setup = run_setup(workdir, options.rows)
    setup_seconds = time.perf_counter() - started
    dataset = load_dataset()
    duck = DuckQueries(setup.snapshot_dir, dataset.field_names, options.duckdb_metadata_cache)
    try:
        with query_service(setup) as service:
            log("checking that baylink and DuckDB agree ...")
            baylink_agg, pages = baylink_aggregate(service, setup.dataset_id)
            duck_agg = duck.aggregate()
            check_agree(baylink_agg, duck_agg, baylink_page(service, setup.dataset_id), duck.page())
            matched = sum(count for count, _ in baylink_agg.values())
            log(f"  aggregate: {matched:,} records matched, {pages} pages through baylink")

            log(f"timing the aggregate: 1 warm-up + {options.repeat} runs each ...")
            agg_baylink = timed(
                lambda: baylink_aggregate(service, setup.dataset_id), options.repeat
            )
            agg_duck = timed(duck.aggregate, options.repeat)
            log(f"timing the page: 1 warm-up + {options.repeat} runs each ...")
            page_baylink = timed(lambda: baylink_page(service, setup.dataset_id), options.repeat)
            page_duck = timed(duck.page, options.repeat)

            agg_ratio = agg_baylink.p50_ms / agg_duck.p50_ms
            page_ratio = page_baylink.p50_ms / page_duck.p50_ms
            if options.profile is not None:
                slower: Callable[[], object]
                if agg_ratio >= page_ratio:
                    name = "aggregate"
                    slower = lambda: baylink_aggregate(service, setup.dataset_id)  # noqa: E731
                else:
                    name = "page"
                    slower = lambda: baylink_page(service, setup.dataset_id)  # noqa: E731
                log(f"profiling one run of baylink's {name} to {options.profile} ...")
                options.profile.write_text(f"baylink {name}\n" + profile_text(slower))
    finally:
        duck.close()

    return {
        "rows": setup.rows,
        "snapshot_build_records_per_s": round(setup.rows / setup.snapshot_seconds, 1),
        "snapshot_bytes": setup.snapshot_bytes,
        "arrow_bytes": setup.arrow_bytes,
        "size_ratio": round(setup.snapshot_bytes / setup.arrow_bytes, 4),
        "aggregate_p50_ms_baylink": round(agg_baylink.p50_ms, 2),
        "aggregate_p50_ms_duckdb": round(agg_duck.p50_ms, 2),
        "aggregate_p95_ms_baylink": round(agg_baylink.p95_ms, 2),
        "aggregate_p95_ms_duckdb": round(agg_duck.p95_ms, 2),
        "page_p50_ms_baylink": round(page_baylink.p50_ms, 2),
        "page_p50_ms_duckdb": round(page_duck.p50_ms, 2),
        "page_p95_ms_baylink": round(page_baylink.p95_ms, 2),
        "page_p95_ms_duckdb": round(page_duck.p95_ms, 2),
        "ratio": round(max(agg_ratio, page_ratio), 2),
        "aggregate_ratio": round(agg_ratio, 2),
        "page_ratio": round(page_ratio, 2),
        "aggregate_path_baylink": AGGREGATE_PATH,
        "aggregate_pages_baylink": pages,
        "aggregate_matched_rows": matched,
        "snapshot_files": setup.files,
        "snapshot_build_seconds": round(setup.snapshot_seconds, 2),
        "ingest_setup_seconds": round(setup.ingest_seconds, 2),
        "setup_seconds": round(setup_seconds, 2),
        "repeat": options.repeat,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "pyarrow": pa.__version__,
        "duckdb": duckdb.__version__,
        "duckdb_parquet_metadata_cache": options.duckdb_metadata_cache,
    }


def report(result: dict[str, Any]) -> None:
    log("")
    log(
        f"rows {result['rows']:,} in {result['snapshot_files']} snapshot files; setup "
        f"{result['setup_seconds']:.1f} s (storing batches {result['ingest_setup_seconds']:.1f} s)"
    )
    log(
        f"  snapshot build       {result['snapshot_build_records_per_s']:>14,.0f} records/s "
        f"({result['snapshot_build_seconds']:.1f} s)"
    )
    log(
        f"  size                 Parquet {result['snapshot_bytes'] / MB:,.1f} MiB, Arrow "
        f"{result['arrow_bytes'] / MB:,.1f} MiB, ratio {result['size_ratio']:.3f}"
    )
    log(f"  aggregate (7 days, bbox; {result['aggregate_matched_rows']:,} records matched)")
    log(f"    baylink path: {result['aggregate_path_baylink']}")
    log(f"    baylink read {result['aggregate_pages_baylink']} pages")
    for name, label in (
        ("aggregate", "aggregate"),
        ("page", f"page ({PAGE_LIMIT:,}, 1 day, 1 region)"),
    ):
        if name == "page":
            log(f"  {label}")
        for engine in ("baylink", "duckdb"):
            log(
                f"    {engine:<8} p50 {result[f'{name}_p50_ms_{engine}']:>10,.1f} ms   "
                f"p95 {result[f'{name}_p95_ms_{engine}']:>10,.1f} ms"
            )
        log(f"    ratio    {result[f'{name}_ratio']:>10.2f}")
    log(f"  ratio (max of the two p50 ratios, baylink / DuckDB) {result['ratio']:.2f}")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="baylink's query service against DuckDB on the same snapshot files."
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="default: %(default)s")
    parser.add_argument(
        "--repeat", type=int, default=15, help="timed runs after one warm-up [%(default)s]"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        default=None,
        help="build the store in DIR and keep it; reuse it if it is there already",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        type=Path,
        default=None,
        help="write a cProfile of one more run of the slower baylink query to PATH",
    )
    parser.add_argument(
        "--no-duckdb-metadata-cache",
        action="store_true",
        help="let DuckDB re-read every Parquet footer at each query (its default)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    return Options(
        args.rows,
        args.repeat,
        args.json,
        args.keep,
        args.profile,
        duckdb_metadata_cache=not args.no_duckdb_metadata_cache,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        if options.keep is not None:
            options.keep.mkdir(parents=True, exist_ok=True)
            result = measure(options, options.keep.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="baylink-query-bench-") as directory:
                result = measure(options, Path(directory))
    except BenchmarkError as error:
        log(f"benchmark failed: {error}")
        return 1
    report(result)
    if options.as_json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
