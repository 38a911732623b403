"""Live delivery under ingest load: many server-sent-event subscribers while records are
ingested, against the same ingest without subscribers, in one run.

    python benchmarks/delivery.py [--subscribers 100] [--records 20000] [--batch-size 1000]
                                  [--rate RECORDS_PER_SECOND] [--json]

What it does:

1. starts its own Tansu broker (memory storage), a fresh SQLite event store, `baylink worker`
   and `baylink api` (uvicorn) as processes, registers the sensor-readings dataset of
   Shenzhen, and lets a Hong Kong partner read it under an active agreement across the
   CN → HK whitelist;
2. baseline: publishes N rows and times until the worker has stored them all (records/s);
3. makes S subscriptions on the SSE channel starting after the store's head, and opens their
   streams from a separate client process (so the clients do not share the publisher's
   interpreter), each with its own connection;
4. publishes another N rows under that load and times them the same way (an untimed ingest of
   N rows before step 2 lets the store and the worker settle first);
5. waits until every subscriber has received every record (N per subscriber), noting the CPU
   time the API and the client process spent meanwhile, then computes each record's latency
   from the moment its batch was stored (the stored event's timestamp) to the moment the
   client read it.

With ``--rate R`` both timed ingests publish at a steady R records/s (a slice every 0.1 s)
instead of all at once, so latency is measured under a steady load, as in service, rather
than behind a burst of N records that every subscriber must take at once; the ingest rates
are then the rates achieved (at most R: below R means the worker fell behind).

Prints the two ingest rates, the slowdown, and latency p50/p99/max over every (subscriber,
record); ``"ratio"`` is the ingest rate with subscribers over the rate without. Progress goes
to stderr; ``--json`` prints one JSON object on stdout. Targets (issue 7): p99 ≤ 500 ms,
ingest slowed by ≤ 20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

# Run as a file (python benchmarks/delivery.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baylink.runtime.broker import TansuBroker
from baylink.runtime.process_group import stop_group
from benchmarks.ingest import (
    BenchmarkError,
    create_topic,
    log,
    running_worker,
    wait_until_stored,
    worker_log_tail,
)
from benchmarks.workload import load_dataset, make_provenance, make_rows
from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind
from domain.whitelist import WhitelistRule
from storage.catalog import Catalog
from storage.governance import Governance
from storage.ingestion import IngestLedger
from storage.snapshots import SnapshotLedger
from streams.publisher import make_producer, publish_rows

PARTNER = "hk-transport-department"
AGREEMENT = "bench-sz-hk"
PURPOSE = "traffic-management"
STORE_LIMIT_SECONDS = 600.0
DELIVERY_LIMIT_SECONDS = 900.0
TICK = 0.1  # seconds between two slices of a steady-rate ingest


@dataclass(frozen=True)
class Options:
    subscribers: int
    records: int
    batch_size: int
    as_json: bool
    rate: float | None = None  # records/s; None publishes each phase at once
    # The clients stand in for partners' own machines: by default they take only what CPU
    # the platform leaves, so the slowdown measured is the platform's own delivery work.
    client_nice: int = 19


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _govern(url: str, dataset: DatasetDefinition) -> str:
    """The Hong Kong partner, the CN → HK rule and an active agreement; returns its key."""
    now = datetime.now(UTC)
    governance = Governance(url)
    try:
        governance.register_partner("hk", "Transport Department", Classification.INTERNAL)
        governance.add_rule(
            WhitelistRule(
                "bench-cn-hk",
                "CN",
                "HK",
                Classification.INTERNAL,
                frozenset({PURPOSE}),
                "GBA-SC-BENCH",
                now - timedelta(days=1),
                dataset_kind=DatasetKind.TRAFFIC,
            )
        )
        terms = AgreementTerms(
            agreement_id=AGREEMENT,
            provider_region=dataset.owner_region,
            consumer_partner=PARTNER,
            datasets=frozenset({dataset.id}),
            purpose=PURPOSE,
            valid_from=now - timedelta(days=1),
        )
        lookup = {dataset.id: dataset}.__getitem__
        governance.propose(terms, dataset.owner_region, lookup)
        governance.approve(AGREEMENT, dataset.owner_region)
        governance.accept(AGREEMENT, PARTNER)
        governance.activate(AGREEMENT, "admin", lookup, now)
        return governance.issue_key(PARTNER, now - timedelta(seconds=1)).key
    finally:
        governance.close()


@contextlib.contextmanager
def running_api(url: str, workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAYLINK_", "OTEL_"))}
    env.update(
        {
            "BAYLINK_STORAGE_EVENT_STORE_URL": url,
            "BAYLINK_STORAGE_OBJECT_STORE_URL": (workdir / "objects").as_uri(),
            "BAYLINK_API_ADMIN_TOKEN": secrets.token_urlsafe(32),
            "BAYLINK_API_PSEUDONYM_SECRET": secrets.token_urlsafe(32),
            # One client address opens every stream: no per-partner request limit applies.
            "BAYLINK_API_RATE_LIMIT_BURST": "100000",
            "BAYLINK_API_RATE_LIMIT_PER_SECOND": "100000",
            "BAYLINK_DATA_DIR": str(workdir / "data"),
        }
    )
    argv = [sys.executable, "-m", "baylink", "api", "--port", str(port)]
    with (workdir / "api.log").open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError("the API did not start; see " + str(workdir / "api.log"))
                time.sleep(0.2)
            yield process
        finally:
            stop_group(process, 15.0)


def _subscribe(api: str, key: str, dataset: DatasetDefinition, after: int, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"dataset_id": dataset.id, "channel": "sse", "start_position": after + 1}
    ids = []
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        for _ in range(count):
            response = client.post("/v1/subscriptions", json=body)
            if response.status_code != 201:
                raise BenchmarkError(f"subscribing failed: {response.status_code} {response.text}")
            ids.append(response.json()["subscription_id"])
    return ids


# --- the client process ----------------------------------------------------------------------


async def _stream(
    client: httpx.AsyncClient, path: str, expected: int, ready: asyncio.Event
) -> dict[int, tuple[int, float]]:
    """Reads one SSE stream until ``expected`` records: per log position, the number of
    records and when the last of them arrived (wall clock). Events are split from the bytes
    as they arrive, not line by line: the client shares the machine's cores with the API, and
    its own parsing should delay delivery as little as it can."""
    seen: dict[int, tuple[int, float]] = {}
    received = 0
    rest = b""
    async with client.stream("GET", path) as response:
        response.raise_for_status()
        ready.set()
        async for data in response.aiter_bytes():
            now = time.time()
            events = (rest + data).split(b"\n\n")
            rest = events.pop()
            for event in events:
                if b"\nevent: record\n" not in event or not event.startswith(b"id: "):
                    continue
                position = int(event[4 : event.index(b":", 4)])
                count, _ = seen.get(position, (0, 0.0))
                seen[position] = (count + 1, now)
                received += 1
            if received >= expected:
                return seen
    raise BenchmarkError(f"{path}: the stream ended after {received} of {expected} records")


async def _client(api: str, key: str, subscriptions: list[str], expected: int, out: Path) -> None:
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    limits = httpx.Limits(max_connections=len(subscriptions) + 5)
    timeout = httpx.Timeout(30.0, read=DELIVERY_LIMIT_SECONDS)
    async with httpx.AsyncClient(
        base_url=api, headers=headers, limits=limits, timeout=timeout
    ) as client:
        readies = [asyncio.Event() for _ in subscriptions]
        tasks = [
            asyncio.create_task(_stream(client, f"/v1/subscriptions/{sid}/events", expected, r))
            for sid, r in zip(subscriptions, readies, strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        (out.parent / "ready").write_text("ready")
        results = await asyncio.gather(*tasks)
    text = json.dumps([{str(p): v for p, v in r.items()} for r in results])
    await asyncio.to_thread(out.write_text, text)


def client_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    os.nice(spec["nice"])
    asyncio.run(
        _client(
            spec["api"], spec["key"], spec["subscriptions"], spec["expected"], Path(spec["out"])
        )
    )
    return 0


# --- the measurement -------------------------------------------------------------------------


async def _ingest(
    broker: str,
    dataset: DatasetDefinition,
    rows: list[Any],
    options: Options,
    ledger: IngestLedger,
    worker: subprocess.Popen[bytes],
    label: str,
) -> float:
    """Publishes ``rows`` (at ``options.rate`` when given) and waits until stored; returns
    records per second."""
    producer = make_producer(broker)
    await producer.start()
    try:
        provenance = make_provenance(dataset, label)
        per_tick = len(rows) if options.rate is None else max(1, round(options.rate * TICK))
        last: dict[int, int] = {}
        started = time.monotonic()
        for tick, first in enumerate(range(0, len(rows), per_tick)):
            if options.rate is not None:
                await asyncio.sleep(max(0.0, started + tick * TICK - time.monotonic()))
            report = await publish_rows(
                producer,
                dataset,
                rows[first : first + per_tick],
                provenance,
                batch_size=options.batch_size,
            )
            for partition, offset in report.last_offsets().items():
                last[partition] = max(offset, last.get(partition, -1))
        await wait_until_stored(
            ledger, dataset.ingest_topic, last, worker, STORE_LIMIT_SECONDS, label
        )
        return len(rows) / (time.monotonic() - started)
    finally:
        await producer.stop()


def _stored_times(url: str, first: int, last: int) -> dict[int, float]:
    ledger = SnapshotLedger(url)
    try:
        return {p: b.timestamp.timestamp() for p, b in ledger.batches_between(first, last)}
    finally:
        ledger.close()


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(options: Options, workdir: Path) -> dict[str, Any]:
    dataset = load_dataset()
    url = f"sqlite:///{workdir / 'events.sqlite'}"
    with TansuBroker(workdir / "broker") as broker:
        catalog = Catalog(url)
        try:
            catalog.register(dataset)
        finally:
            catalog.close()
        await create_topic(broker.bootstrap, dataset.ingest_topic, dataset.partitions)
        key = _govern(url, dataset)
        ledger = IngestLedger(url)
        port = _free_port()
        api = f"http://127.0.0.1:{port}"
        try:
            with (
                running_worker(broker.bootstrap, url, workdir, {}, "worker") as worker,
                running_api(url, workdir, port) as api_process,
            ):
                log("warming the worker up (the group join takes several seconds) …")
                warm = make_rows(dataset.partitions * 8, seed=1)
                at_once = replace(options, rate=None)  # the untimed ingests
                await _ingest(broker.bootstrap, dataset, warm, at_once, ledger, worker, "warm")
                start = datetime.now(UTC) - timedelta(days=3)
                # The first large ingest after start-up is slower (the store and the worker
                # settle): it is run once untimed, so both timed phases start alike.
                primer = make_rows(options.records, start=start - timedelta(days=1), seed=4)
                await _ingest(broker.bootstrap, dataset, primer, at_once, ledger, worker, "primer")
                quiet = make_rows(options.records, start=start, seed=2)
                log(f"ingesting {options.records} records without subscribers …")
                rate_without = await _ingest(
                    broker.bootstrap, dataset, quiet, options, ledger, worker, "quiet"
                )
                log(f"  {rate_without:,.0f} records/s")
                head = ledger.position()
                subscriptions = _subscribe(api, key, dataset, head, options.subscribers)
                spec = {
                    "api": api,
                    "key": key,
                    "subscriptions": subscriptions,
                    "expected": options.records,
                    "out": str(workdir / "received.json"),
                    "nice": options.client_nice,
                }
                (workdir / "client.json").write_text(json.dumps(spec))
                log(f"opening {options.subscribers} SSE streams from a client process …")
                client_log = (workdir / "client.log").open("wb")
                client = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--client", str(workdir / "client.json"),
                    stderr=client_log,
                )  # fmt: skip
                try:
                    deadline = time.monotonic() + 120
                    while not (workdir / "ready").exists():
                        if client.returncode is not None or time.monotonic() > deadline:
                            raise BenchmarkError(
                                "the subscribers did not connect: "
                                + (workdir / "client.log").read_text()[-2000:]
                            )
                        await asyncio.sleep(0.1)
                    api_cpu = _cpu_seconds(api_process.pid)
                    client_cpu = _cpu_seconds(client.pid)
                    delivery_started = time.monotonic()
                    loaded = make_rows(options.records, start=start + timedelta(days=1), seed=3)
                    log(f"ingesting {options.records} records with the subscribers …")
                    head_before = ledger.position()
                    rate_with = await _ingest(
                        broker.bootstrap, dataset, loaded, options, ledger, worker, "loaded"
                    )
                    head_after = ledger.position()
                    log(f"  {rate_with:,.0f} records/s; waiting for every subscriber …")
                    while client.returncode is None:
                        api_spent = _cpu_seconds(api_process.pid) - api_cpu
                        client_spent = _cpu_seconds(client.pid) - client_cpu
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(client.wait(), 0.5)
                        if time.monotonic() - delivery_started > DELIVERY_LIMIT_SECONDS:
                            raise BenchmarkError("the subscribers did not receive everything")
                    delivery_seconds = time.monotonic() - delivery_started
                    if client.returncode != 0:
                        raise BenchmarkError(
                            "the subscriber process failed: "
                            + (workdir / "client.log").read_text()[-2000:]
                        )
                finally:
                    if client.returncode is None:
                        client.kill()
                        await client.wait()
                    client_log.close()
        except BenchmarkError as error:
            raise BenchmarkError(
                f"{error}\n--- worker log ---\n{worker_log_tail(workdir / 'worker.log')}"
            ) from None
        finally:
            ledger.close()
    stored = _stored_times(url, head_before + 1, head_after)
    received = json.loads((workdir / "received.json").read_text())
    latencies: list[float] = []
    for stream in received:
        for position, (count, at) in stream.items():
            latencies += [at - stored[int(position)]] * count
    return {
        "subscribers": options.subscribers,
        "records": options.records,
        "batch_size": options.batch_size,
        "rate": options.rate,
        "ingest_records_per_second_without": round(rate_without),
        "ingest_records_per_second_with": round(rate_with),
        "ingest_slowdown": round(1 - rate_with / rate_without, 3),
        "delivered_events": len(latencies),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p99": round(_percentile(latencies, 0.99) * 1000, 1),
        "latency_ms_max": round(max(latencies) * 1000, 1),
        "delivery_seconds": round(delivery_seconds, 1),
        "api_cpu_us_per_delivery": round(api_spent / len(latencies) * 1e6, 1),
        "client_cpu_us_per_delivery": round(client_spent / len(latencies) * 1e6, 1),
        "ratio": round(rate_with / rate_without, 3),
    }


def report(result: dict[str, Any]) -> None:
    pace = "at once" if result["rate"] is None else f"at {result['rate']:,.0f} records/s"
    log(
        f"{result['subscribers']} SSE subscribers, {result['records']} records each way "
        f"(batches of {result['batch_size']}, published {pace}):"
    )
    log(f"  ingest without subscribers {result['ingest_records_per_second_without']:>9,} rec/s")
    log(f"  ingest with subscribers    {result['ingest_records_per_second_with']:>9,} rec/s")
    log(f"  slowdown {result['ingest_slowdown']:.1%} (target ≤ 20%)")
    log(
        f"  store → subscriber latency p50 {result['latency_ms_p50']} ms, p99 "
        f"{result['latency_ms_p99']} ms (target ≤ 500), max {result['latency_ms_max']} ms, over "
        f"{result['delivered_events']:,} deliveries"
    )
    log(
        f"  all delivered {result['delivery_seconds']} s after the loaded ingest began; CPU per "
        f"delivery: API {result['api_cpu_us_per_delivery']} µs, client "
        f"{result['client_cpu_us_per_delivery']} µs"
    )


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, help="publish at this many records/s (default: all at once)"
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=19,
        help="niceness of the subscribers' client process, which stands in for partners' "
        "machines (default 19: only CPU the platform leaves; 0: an equal share)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.subscribers < 1 or args.records < 1 or args.batch_size < 1:
        parser.error("--subscribers, --records and --batch-size must be at least 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if not 0 <= args.client_nice <= 19:
        parser.error("--client-nice must be from 0 to 19")
    return Options(
        args.subscribers, args.records, args.batch_size, args.json, args.rate, args.client_nice
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--client"]:
        return client_main(arguments[1])
    options = parse_args(arguments)
    with tempfile.TemporaryDirectory(prefix="baylink-delivery-") as directory:
        try:
            result = asyncio.run(measure(options, Path(directory)))
        except BenchmarkError as error:
            print(f"delivery benchmark: {error}", file=sys.stderr)
            return 1
    report(result)
    if options.as_json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
