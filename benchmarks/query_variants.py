"""What the hot spots of benchmarks/query.py cost, and what fixing them would save: prototypes
of the suggested changes, run over a store that ``benchmarks/query.py --keep DIR`` built.

    python benchmarks/query_variants.py DIR [--repeat 5] [--build]

Nothing in storage/ is changed: the prototypes call QueryService's internals, or replace
``storage.query._page`` inside this process only. Each prototype's answer is checked against
the unchanged service's before it is timed. ``--build`` also profiles the snapshot build of
the same records into a throw-away object store, and times a one-sort partitioning against
``partition_files`` (checking that the Parquet bytes are identical).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# Run as a file (python benchmarks/query_variants.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import storage.query as query_module
from benchmarks.query import (
    AGGREGATE_BBOX,
    AGGREGATE_END,
    AGGREGATE_START,
    MB,
    PAGE_END,
    PAGE_LIMIT,
    PAGE_REGION,
    PAGE_START,
    Aggregate,
    DuckQueries,
    baylink_aggregate,
    baylink_page,
    load_dataset,
    log,
    percentile,
    query_service,
    run_setup,
)
from domain.dataset import DatasetDefinition
from domain.record import to_micros
from storage.arrow_access import fragments_dataset
from storage.catalog import Catalog
from storage.object_store_local import LocalObjectStore
from storage.parquet_snapshot import (
    PartitionFile,
    _parquet_bytes,
    file_schema,
    partition_files,
    record_schema,
    records_table,
    with_point_geometry,
)
from storage.query import MAX_LIMIT, QueryService
from storage.snapshots import SnapshotBuilder, SnapshotLedger

_original_page = query_module._page


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    run()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) * 1000)
    return percentile(runs, 50), percentile(runs, 95)


# --- aggregate prototypes --------------------------------------------------------------------


@contextmanager
def projected_pages(columns: Sequence[str]) -> Iterator[None]:
    """``storage.query._page`` replaced, in this process, by a copy that reads only
    ``columns`` plus the sort keys from the snapshot files: what passing the requested
    ``fields`` down into the scan would do."""

    def page(
        dataset: DatasetDefinition,
        view: Any,
        filters: Any,
        after: Any,
        limit: int,
        location: Any,
    ) -> pa.Table:
        wanted = list(dict.fromkeys([*columns, dataset.time_field, "record_id"]))
        return projected_page(dataset, view, filters, after, limit, location, wanted)

    setattr(query_module, "_page", page)  # noqa: B010 - this process only
    try:
        yield
    finally:
        setattr(query_module, "_page", _original_page)  # noqa: B010


def projected_page(
    dataset: DatasetDefinition,
    view: Any,
    filters: Any,
    after: Any,
    limit: int,
    location: Any,
    wanted: list[str],
) -> pa.Table:
    """storage.query._page as it is, but for ``columns=wanted`` in the scan and the tail."""
    predicate = query_module._predicate(dataset, filters, after)
    full = record_schema(dataset)
    schema = pa.schema([full.field(name) for name in wanted])
    want = limit + 1
    by_day = query_module._candidate_files(view, filters, after)
    days = sorted(by_day)
    parts: list[pa.Table] = []
    matched = read = 0
    index = 0
    last_day: str | None = None
    while index < len(days) and matched < want:
        selectivity = max(matched / read, 0.01) if read else 1.0
        target = (want - matched) / selectivity
        fragments: list[Any] = []
        rows = 0
        while index < len(days) and (not fragments or rows < target):
            for file, fragment in by_day[days[index]]:
                fragments.append(fragment)
                rows += file.rows
            last_day = days[index]
            index += 1
        table = fragments_dataset(full, fragments, location).to_table(
            columns=wanted, filter=predicate
        )
        parts.append(table)
        matched += table.num_rows
        read += rows
    tail = view.tail if predicate is None else view.tail.filter(predicate)
    if matched >= want and last_day is not None:
        next_day = datetime.strptime(last_day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
        tail = tail.filter(
            pc.less(tail[dataset.time_field], query_module._timestamp(to_micros(next_day)))
        )
    parts.append(tail.select(wanted).cast(schema))
    combined = pa.concat_tables(parts)
    order = pc.sort_indices(
        combined, sort_keys=[(dataset.time_field, "ascending"), ("record_id", "ascending")]
    )
    return combined.take(order.slice(0, want))


def one_scan_aggregate(service: QueryService, dataset_id: str) -> Aggregate:
    """A QueryService.aggregate prototype: the records' filters and file pruning, then one
    scan of the candidate files reading only the grouped and aggregated columns, the tail
    filtered alike, and one group_by."""
    dataset = service._definition(dataset_id)
    filters = service._filters(dataset, AGGREGATE_START, AGGREGATE_END, None, AGGREGATE_BBOX)
    view = service._view(dataset)
    predicate = query_module._predicate(dataset, filters, None)
    fragments = [
        fragment
        for files in query_module._candidate_files(view, filters, None).values()
        for _, fragment in files
    ]
    columns = ["region", "speed"]
    scanned = fragments_dataset(record_schema(dataset), fragments, service._location).to_table(
        columns=columns, filter=predicate
    )
    tail = view.tail.filter(predicate).select(columns).cast(scanned.schema)
    grouped = (
        pa.concat_tables([scanned, tail])
        .group_by("region")
        .aggregate([([], "count_all"), ("speed", "mean")])
    )
    return {
        str(r): (int(c), float(m))
        for r, c, m in zip(
            grouped["region"].to_pylist(),
            grouped["count_all"].to_pylist(),
            grouped["speed_mean"].to_pylist(),
            strict=True,
        )
    }


def same_aggregate(a: Aggregate, b: Aggregate) -> bool:
    return sorted(a) == sorted(b) and all(
        a[r][0] == b[r][0] and abs(a[r][1] - b[r][1]) <= 1e-9 * max(1.0, abs(a[r][1])) for r in a
    )


# --- page prototypes -------------------------------------------------------------------------


def page_breakdown(service: QueryService, dataset_id: str, repeat: int) -> None:
    """Where the page's time goes: reading the day's file, filtering, and ordering."""
    dataset = service._definition(dataset_id)
    filters = service._filters(dataset, PAGE_START, PAGE_END, PAGE_REGION, None)
    view = service._view(dataset)
    predicate = query_module._predicate(dataset, filters, None)
    fragments = [
        fragment
        for files in query_module._candidate_files(view, filters, None).values()
        for _, fragment in files
    ]
    schema = record_schema(dataset)
    source = fragments_dataset(schema, fragments, service._location)
    table = source.to_table(filter=predicate)
    keys = [(dataset.time_field, "ascending"), ("record_id", "ascending")]
    log(f"  page: {len(fragments)} candidate file(s), {table.num_rows:,} rows matched")
    steps: list[tuple[str, Callable[[], object]]] = [
        ("read + filter the day's file, every column", lambda: source.to_table(filter=predicate)),
        (
            "read + filter, sort keys only",
            lambda: source.to_table(columns=[dataset.time_field, "record_id"], filter=predicate),
        ),
        (
            "sort_indices over the matched rows + take",
            lambda: table.take(pc.sort_indices(table, sort_keys=keys).slice(0, PAGE_LIMIT + 1)),
        ),
        ("select_k_unstable + sort of k rows + take", lambda: _top_k(table, keys)),
        ("service.records (whole call)", lambda: baylink_page(service, dataset_id)),
        ("service._definition (catalog replay)", lambda: service._definition(dataset_id)),
        ("service._view (positions, publications, tail)", lambda: service._view(dataset)),
    ]
    for label, run in steps:
        p50, p95 = timed(run, repeat)
        log(f"    {label:<48} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms")


def aggregate_page_breakdown(service: QueryService, dataset_id: str, repeat: int) -> None:
    """One page of the aggregate's paging, taken apart: its scan of a day's files, and the
    ordering of what matched, as now and as it could be."""
    dataset = service._definition(dataset_id)
    filters = service._filters(dataset, AGGREGATE_START, AGGREGATE_END, None, AGGREGATE_BBOX)
    view = service._view(dataset)
    predicate = query_module._predicate(dataset, filters, None)
    by_day = query_module._candidate_files(view, filters, None)
    first_day = sorted(by_day)[0]
    fragments = [fragment for _, fragment in by_day[first_day]]
    schema = record_schema(dataset)
    source = fragments_dataset(schema, fragments, service._location)
    combined = pa.concat_tables([source.to_table(filter=predicate), view.tail.cast(schema)])
    keys = [(dataset.time_field, "ascending"), ("record_id", "ascending")]
    want = MAX_LIMIT + 1
    log(
        f"  one aggregate page: {len(fragments)} files of day {first_day}, "
        f"{combined.num_rows:,} rows matched in {combined.num_columns} chunked columns"
    )
    expected = combined.take(pc.sort_indices(combined, sort_keys=keys).slice(0, want))

    def combined_keys_sort() -> pa.Table:
        ordered = pc.sort_indices(
            combined.select([dataset.time_field, "record_id"]).combine_chunks(), sort_keys=keys
        )
        return combined.take(ordered.slice(0, want))

    def top_k() -> pa.Table:
        key_table = combined.select([dataset.time_field, "record_id"]).combine_chunks()
        indices = pc.select_k_unstable(key_table, k=want, sort_keys=keys)
        order = pc.sort_indices(key_table.take(indices), sort_keys=keys)
        return combined.take(indices.take(order))

    for check in (combined_keys_sort, top_k):
        if not check().equals(expected):
            log(f"    {check.__name__} gives another page")
    steps: list[tuple[str, Callable[[], object]]] = [
        ("scan the day, every column", lambda: source.to_table(filter=predicate)),
        (
            "scan the day, region/speed + sort keys",
            lambda: source.to_table(
                columns=["region", "speed", dataset.time_field, "record_id"], filter=predicate
            ),
        ),
        (
            "as now: sort_indices(chunked table) + take",
            lambda: combined.take(pc.sort_indices(combined, sort_keys=keys).slice(0, want)),
        ),
        ("sort_indices(combined key columns) + take", combined_keys_sort),
        ("select_k_unstable + sort of k + take", top_k),
        (
            "take 10,001 rows of the chunked table",
            lambda: combined.take(pa.array(range(min(want, combined.num_rows)))),
        ),
    ]
    for label, run in steps:
        p50, p95 = timed(run, repeat)
        log(f"    {label:<48} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms")


def row_group_experiment(service: QueryService, dataset_id: str, repeat: int) -> None:
    """The aggregate's continuation pages re-read a day from its start: the day's files are
    one row group each, so the cursor's ``time > t`` prunes nothing. The same files rewritten
    with smaller row groups (nothing else changed) let row-group statistics skip what the
    cursor has passed; the page's own files too."""
    dataset = service._definition(dataset_id)
    filters = service._filters(dataset, AGGREGATE_START, AGGREGATE_END, None, AGGREGATE_BBOX)
    view = service._view(dataset)
    by_day = query_module._candidate_files(view, filters, None)
    files = [file for file, _ in by_day[sorted(by_day)[0]]]
    store_root = service._location.base if service._location is not None else ""
    schema = record_schema(dataset)
    # A cursor three quarters into the day: what the aggregate's 15th page of ~20 resumes at.
    table = fragments_dataset(
        schema, [f for _, f in by_day[sorted(by_day)[0]]], service._location
    ).to_table(columns=[dataset.time_field])
    times = pc.sort_indices(table[dataset.time_field])
    at = table[dataset.time_field].take(times)[int(table.num_rows * 0.75)].as_py()
    after = query_module._After(to_micros(at), "0" * 32)
    predicate = query_module._predicate(dataset, filters, after)
    with tempfile.TemporaryDirectory(prefix="baylink-row-groups-") as directory:
        for size in (None, 16_384):
            fragments = []
            for file in files:
                path = f"{store_root}/{file.key}"
                if size is not None:
                    rewritten = pq.read_table(path)
                    path = f"{directory}/{file.region}-{file.date}-{size}.parquet"
                    pq.write_table(
                        rewritten,
                        path,
                        row_group_size=size,
                        compression="zstd",
                        compression_level=3,
                        use_dictionary=True,
                        write_statistics=True,
                        data_page_version="2.0",
                        version="2.6",
                    )
                fragments.append(
                    ds.ParquetFileFormat().make_fragment(
                        path,
                        filesystem=pafs.LocalFileSystem(),
                        partition_expression=ds.field("region") == file.region,
                    )
                )
            source = ds.FileSystemDataset(
                fragments, schema, ds.ParquetFileFormat(), pafs.LocalFileSystem()
            )
            label = "as written" if size is None else f"row groups of {size:,}"
            bytes_ = sum(Path(f.path).stat().st_size for f in fragments)
            rows = source.to_table(filter=predicate).num_rows
            scan: Callable[[], object] = partial(source.to_table, filter=predicate)
            p50, p95 = timed(scan, repeat)
            log(
                f"    continuation scan, {label:<22} {bytes_ / MB:6.1f} MiB, {rows:,} rows "
                f"p50 {p50:7.2f} ms  p95 {p95:7.2f} ms"
            )


def _top_k(table: pa.Table, keys: list[tuple[str, str]]) -> pa.Table:
    k = min(PAGE_LIMIT + 1, table.num_rows)
    indices = pc.select_k_unstable(table, k=k, sort_keys=keys)
    top = table.take(indices)
    return top.take(pc.sort_indices(top, sort_keys=keys))


# --- snapshot build --------------------------------------------------------------------------


def grouped_partition_files(dataset: DatasetDefinition, table: pa.Table) -> list[PartitionFile]:
    """``partition_files`` without one full-table filter per (region, day): one integer
    group key per row, one stable sort of that key, then a zero-copy slice per part, each
    sorted by (time, record_id) as now."""
    if table.num_rows == 0:
        return []
    days = pc.strftime(table[dataset.time_field], format="%Y-%m-%d", locale="C")
    regions = pc.dictionary_encode(table["region"]).combine_chunks()
    dates = pc.dictionary_encode(days).combine_chunks()
    region_names, date_names = regions.dictionary, dates.dictionary
    # Ranks of the dictionaries' values, so group keys sort as (region, day) strings do.
    region_rank = pc.rank(region_names, sort_keys="ascending").cast(pa.int64())
    date_rank = pc.rank(date_names, sort_keys="ascending").cast(pa.int64())
    key = pc.add(
        pc.multiply(pc.take(region_rank, regions.indices), len(date_names) + 1),
        pc.take(date_rank, dates.indices),
    )
    order = pc.sort_indices(key)
    table = table.take(order)
    key = key.take(order)
    target = file_schema(dataset)
    out = []
    runs = pc.run_end_encode(key)
    run_ends = runs.run_ends.to_pylist()
    start = 0
    for end in run_ends:
        part = table.slice(start, end - start).sort_by(
            [(dataset.time_field, "ascending"), ("record_id", "ascending")]
        )
        region = str(part["region"][0].as_py())
        day = str(pc.strftime(part[dataset.time_field][0], format="%Y-%m-%d").as_py())
        part = part.drop_columns(["region"]).cast(target)
        if dataset.geometry is not None:
            part = with_point_geometry(part, dataset.geometry.lon, dataset.geometry.lat)
        out.append(PartitionFile(region, day, part.num_rows, _parquet_bytes(part)))
        start = end
    return out


def collect_per_batch(
    ledger: SnapshotLedger, dataset: DatasetDefinition, first: int, last: int
) -> pa.Table:
    """SnapshotBuilder._collect + records_table, but one Arrow table per batch event, so the
    Python lists of a batch die young instead of all N records living until the end."""
    tables = [
        records_table(dataset, batch.accepted())
        for _, batch in ledger.batches_between(first, last)
        if batch.dataset_id == dataset.id
    ]
    return pa.concat_tables(tables) if tables else records_table(dataset, [])


def collect_as_now(
    ledger: SnapshotLedger, dataset: DatasetDefinition, first: int, last: int
) -> pa.Table:
    records: list[Any] = []
    for _, batch in ledger.batches_between(first, last):
        if batch.dataset_id == dataset.id:
            records.extend(batch.accepted())
    return records_table(dataset, records)


def build_profile(event_store_url: str) -> None:
    dataset = load_dataset()
    ledger, catalog = SnapshotLedger(event_store_url), Catalog(event_store_url)
    try:
        with tempfile.TemporaryDirectory(prefix="baylink-build-profile-") as directory:
            builder = SnapshotBuilder(ledger, catalog, LocalObjectStore(Path(directory)))
            last = ledger.built_up_to()
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            manifest = builder.build(dataset, 1, last)
            profiler.disable()
            seconds = time.perf_counter() - started
            log(
                f"  build of {manifest.row_count:,} records: {seconds:.1f} s "
                f"({manifest.row_count / seconds:,.0f} records/s, under cProfile)"
            )
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            log(out.getvalue())
    finally:
        ledger.close()
        catalog.close()
    ledger = SnapshotLedger(event_store_url)
    try:
        last = ledger.built_up_to()
        started = time.perf_counter()
        table = collect_as_now(ledger, dataset, 1, last)
        now_s = time.perf_counter() - started
        del table
        started = time.perf_counter()
        table = collect_per_batch(ledger, dataset, 1, last)
        per_batch_s = time.perf_counter() - started
    finally:
        ledger.close()
    log(
        f"  collect + records_table: as now {now_s:.2f} s, "
        f"one table per batch {per_batch_s:.2f} s ({table.num_rows:,} rows)"
    )
    started = time.perf_counter()
    current = partition_files(dataset, table)
    current_s = time.perf_counter() - started
    started = time.perf_counter()
    proposed = grouped_partition_files(dataset, table)
    proposed_s = time.perf_counter() - started
    identical = [(p.region, p.date, p.rows, p.data) for p in current] == [
        (p.region, p.date, p.rows, p.data) for p in proposed
    ]
    log(
        f"  partition_files {current_s:.2f} s; one group-key sort + slices {proposed_s:.2f} s; "
        f"byte-identical files: {identical}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("store", type=Path, help="a --keep DIR of benchmarks/query.py")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build", action="store_true", help="profile the snapshot build too")
    args = parser.parse_args(argv)
    marker = args.store / "setup.json"
    if not marker.exists():
        parser.error(f"{args.store} holds no store built by benchmarks/query.py --keep")
    rows = json.loads(marker.read_text())["rows"]
    setup = run_setup(args.store.resolve(), rows)
    dataset = load_dataset()
    duck = DuckQueries(setup.snapshot_dir, dataset.field_names)
    try:
        with query_service(setup) as service:
            expected, pages = baylink_aggregate(service, setup.dataset_id)
            log(f"aggregate over {rows:,} rows ({pages} pages):")
            with projected_pages(["region", "speed"]):
                projected, _ = baylink_aggregate(service, setup.dataset_id)
            prototype = one_scan_aggregate(service, setup.dataset_id)
            if not (same_aggregate(expected, projected) and same_aggregate(expected, prototype)):
                log(f"prototypes disagree: {expected} {projected} {prototype}")
                return 1
            variants: list[tuple[str, Callable[[], object]]] = [
                ("paged records, as is", lambda: baylink_aggregate(service, setup.dataset_id)),
                (
                    "paged records, fields pushed into the scan",
                    lambda: _projected(service, setup.dataset_id),
                ),
                (
                    "one-scan aggregate prototype",
                    lambda: one_scan_aggregate(service, setup.dataset_id),
                ),
                ("DuckDB", duck.aggregate),
            ]
            for label, run in variants:
                p50, p95 = timed(run, args.repeat)
                log(f"    {label:<48} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms")
            aggregate_page_breakdown(service, setup.dataset_id, args.repeat)
            page_breakdown(service, setup.dataset_id, args.repeat)
            p50, p95 = timed(duck.page, args.repeat)
            log(f"    {'DuckDB page':<48} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms")
            log("  row groups:")
            row_group_experiment(service, setup.dataset_id, args.repeat)
    finally:
        duck.close()
    if args.build:
        log("snapshot build:")
        build_profile(setup.event_store_url)
    return 0


def _projected(service: QueryService, dataset_id: str) -> Aggregate:
    with projected_pages(["region", "speed"]):
        return baylink_aggregate(service, dataset_id)[0]


if __name__ == "__main__":
    sys.exit(main())
