"""End-to-end ingest throughput: baylink (publish → Faust worker → event store) against raw
aiokafka over the same broker, with the worker's CPU and memory sampled throughout, and the
same again with the worker exporting its traces.

    python benchmarks/ingest.py [--records N] [--rounds R] [--batch-size B]
                                [--event-store URL] [--tracing-pairs P] [--json]

What it does, all in one run:

1. starts its own Tansu broker (memory storage, a free port);
2. phase 1, tracing off: registers the sensor-readings dataset (benchmarks/sensor-readings.yaml)
   in a fresh event store (SQLite in a temporary directory unless ``--event-store`` names an
   empty one), creates its ingest topic and starts ``python -m baylink worker``;
3. warms the worker up: a message per partition, waited for until stored (the consumer-group
   join takes several seconds before the worker gets its partitions);
4. R rounds, each a pair back to back:
   - baseline: the same batches baylink would publish (``wire.encode_rows``, same batch size,
     partitions and headers), encoded beforehand, produced with a plain ``AIOKafkaProducer``
     to a separate topic and read back with a plain ``AIOKafkaConsumer`` (assigned partitions,
     no group) until every message has arrived: produce-then-consume records/s;
   - baylink: ``publish_rows`` of N generated rows (3 regions), timed until every partition's
     stored position (``IngestLedger.resume_offset``) reaches its last published offset;
   then the store's totals must have grown by exactly R * N accepted and 0 rejected;
5. reports the medians of both rates and their ratio, the worker's CPU time per record and its
   RSS (sampled every 0.2 s) at the start, half-way, peak and end;
6. then phases alternate (P pairs, default 2): tracing on, off, on, ..., each the same with a
   twin dataset (its own topic) in its own store; with tracing on the worker exports spans
   over OTLP/HTTP to a sink in this process. Reports the medians per mode, the slowdown and
   the worker's extra CPU per record. The headline figures are the first phase's.

Progress and figures go to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

# Run as a file (python benchmarks/ingest.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baylink.runtime.broker import TansuBroker
from baylink.runtime.process_group import describe_exit, stop_group
from benchmarks.workload import Row, load_dataset, make_provenance, make_rows
from domain.dataset import DatasetDefinition
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.publisher import make_producer, partition_of, publish_rows
from streams.topic_admin import ensure_ingest_topic

RSS_INTERVAL = 0.2
POLL_INTERVAL = 0.02
WORKER_STOP_GRACE = 15.0
MB = 1024 * 1024


class BenchmarkError(Exception):
    """The benchmark could not run or its result is not valid."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the worker and its memory -------------------------------------------------------------


@dataclass
class RssSampler:
    """Samples a process's resident set size on a thread; marks split it into phases."""

    pid: int
    interval: float = RSS_INTERVAL
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sample_now(self) -> int:
        rss = sum(p.memory_info().rss for p in process_tree(self.pid))
        self.samples.append((time.monotonic(), rss))
        return rss

    def at(self, moment: float) -> int:
        """The sample nearest ``moment``."""
        samples = list(self.samples)
        return min(samples, key=lambda s: abs(s[0] - moment))[1] if samples else 0

    def peak_between(self, start: float, end: float) -> int:
        inside = [rss for at, rss in list(self.samples) if start <= at <= end]
        return max(inside, default=0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample_now()
            except psutil.Error:
                return


@contextlib.contextmanager
def running_worker(
    bootstrap: str, event_store_url: str, workdir: Path, extra_env: dict[str, str], name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m baylink worker`` in its own process group, stopped on the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAYLINK_", "OTEL_"))}
    env.update(
        {
            "BAYLINK_STREAMS_BROKER": bootstrap,
            "BAYLINK_STORAGE_EVENT_STORE_URL": event_store_url,
            "BAYLINK_DATA_DIR": str(workdir / "data"),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
    )
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "baylink", "worker", "--log-level", "WARNING"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process, WORKER_STOP_GRACE)


@contextlib.contextmanager
def py_spy(pid: int, output: Path | None, wall: bool = False) -> Iterator[None]:
    """Sample ``pid`` with py-spy while inside, as collapsed stacks: only the thread holding
    the GIL (CPU time in Python), or with ``wall`` every thread, waiting included."""
    if output is None:
        yield
        return
    executable = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [executable, "record", "--pid", str(pid), "--rate", "250"]
    command += ["--idle"] if wall else ["--gil"]
    command += ["--format", "raw", "--output", str(output.resolve()), "--nonblocking"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log(f"  worker profile (py-spy, collapsed stacks): {output}")


def worker_log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no worker log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(worker log is empty)"


# --- waiting for the store -----------------------------------------------------------------


def totals_of(ledger: IngestLedger, dataset: DatasetDefinition) -> tuple[int, int]:
    totals = ledger.totals(dataset)
    return totals.accepted, totals.rejected


async def wait_until_stored(
    ledger: IngestLedger,
    topic: str,
    targets: dict[int, int],
    worker: subprocess.Popen[bytes],
    limit_seconds: float,
    what: str,
) -> None:
    """Until every partition's stored position reaches its target offset (as `baylink ingest
    --wait` does), failing fast if the worker dies."""
    pending = dict(targets)
    deadline = time.monotonic() + limit_seconds
    announced = time.monotonic()
    while pending:
        for partition, offset in list(pending.items()):
            stored = ledger.resume_offset(topic, partition)
            if stored is not None and stored >= offset:
                del pending[partition]
        if not pending:
            return
        if worker.poll() is not None:
            raise BenchmarkError(f"the worker exited ({describe_exit(worker.returncode)})")
        now = time.monotonic()
        if now > deadline:
            raise BenchmarkError(
                f"{what}: {len(pending)} of {len(targets)} partitions not stored after "
                f"{limit_seconds:.0f} s"
            )
        if now - announced > 10:
            log(f"  … still waiting for {len(pending)} partition(s) ({what})")
            announced = now
        await asyncio.sleep(POLL_INTERVAL)


def process_tree(pid: int) -> list[psutil.Process]:
    """The worker and its reader processes."""
    worker = psutil.Process(pid)
    return [worker, *worker.children(recursive=True)]


def worker_cpu_seconds(pid: int) -> float:
    """CPU of the worker and its reader processes (which live as long as it does)."""
    total = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


# --- the baseline: raw aiokafka over the same broker ---------------------------------------


@dataclass(frozen=True)
class Encoded:
    partition: int
    value: bytes
    records: int


def encode_like_publish_rows(
    rows: Sequence[Row], dataset: DatasetDefinition, batch_size: int
) -> list[Encoded]:
    """The message values ``publish_rows`` sends for these rows, in its order."""
    by_partition: dict[int, list[Row]] = {}
    for row in rows:
        by_partition.setdefault(partition_of(row, dataset), []).append(row)
    out: list[Encoded] = []
    for partition in sorted(by_partition):
        part_rows = by_partition[partition]
        for start in range(0, len(part_rows), batch_size):
            chunk = part_rows[start : start + batch_size]
            out.append(Encoded(partition, wire.encode_rows(chunk), len(chunk)))
    return out


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        await admin.close()


@dataclass(frozen=True)
class BaselineResult:
    seconds: float
    produce_seconds: float
    consume_seconds: float
    messages: int
    bytes: int


async def run_baseline(
    bootstrap: str,
    topic: str,
    partitions: int,
    batches: list[Encoded],
    headers: list[tuple[str, bytes]],
    limit_seconds: float,
) -> BaselineResult:
    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
        max_request_size=wire.MAX_MESSAGE_BYTES + MB,
        request_timeout_ms=30_000,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * MB,
        max_partition_fetch_bytes=16 * MB,
    )
    await producer.start()
    await consumer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value=b.value, partition=b.partition, headers=headers)
            for b in batches
        ]
        for future in futures:
            await future
        produced = time.perf_counter()
        # Assigned only now: a fetch sent to an empty partition would sit out its wait time.
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        seen = size = 0
        deadline = time.monotonic() + limit_seconds
        while seen < len(batches):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"baseline: read {seen} of {len(batches)} messages")
            fetched = await consumer.getmany(timeout_ms=200)
            for messages in fetched.values():
                seen += len(messages)
                size += sum(len(m.value or b"") for m in messages)
        finished = time.perf_counter()
    finally:
        await consumer.stop()
        await producer.stop()
    return BaselineResult(finished - started, produced - started, finished - produced, seen, size)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Options:
    records: int
    rounds: int
    tracing_pairs: int
    batch_size: int
    event_store: str | None
    as_json: bool
    timeout: float
    join_timeout: float
    profile_worker: Path | None = None
    profile_wall: bool = False
    reader_processes: int | None = None


TRACING_OFF = {"OTEL_TRACES_EXPORTER": "none"}


async def measure(options: Options, workdir: Path) -> dict[str, Any]:
    # Off and on alternate, so a drift of the machine's speed during the run hits both.
    phases = ["tracing off", "tracing on"] * options.tracing_pairs or ["tracing off"]
    log(
        f"generating {len(phases)} phases of {options.rounds} rounds of {options.records:,} "
        "rows over 3 regions …"
    )
    # Each phase has its own dataset (so its own topic) and, unless one store was given, its
    # own store: the second phase must not start with the first one's records in its index.
    datasets = [load_dataset("" if n == 0 else f"-phase-{n + 1}") for n in range(len(phases))]
    rows_of = _phase_rows(options, datasets[0], len(phases))
    broker = TansuBroker(workdir)
    log("starting the Tansu broker …")
    broker.start()
    try:
        log(f"  broker on {broker.bootstrap}")
        results: list[tuple[str, dict[str, Any]]] = []
        with OtlpSink() as sink:
            for number, (phase, dataset) in enumerate(zip(phases, datasets, strict=True)):
                url = options.event_store or f"sqlite:///{workdir / f'events-{number + 1}.sqlite'}"
                log(f"--- {phase}: dataset {dataset.id}, event store {url} ---")
                env = TRACING_OFF if phase == "tracing off" else sink.exporter_env()
                if options.reader_processes is not None:
                    env = {**env, "BAYLINK_STREAMS_READER_PROCESSES": str(options.reader_processes)}
                name = f"worker-{number + 1}"
                catalog, ledger = Catalog(url), IngestLedger(url)
                try:
                    if number == 0 and ledger.position() != 0:
                        raise BenchmarkError(
                            f"the event store {url} is not empty; give an empty one"
                        )
                    catalog.register(dataset)
                    await ensure_ingest_topic(broker.bootstrap, dataset)
                    with running_worker(broker.bootstrap, url, workdir, env, name) as worker:
                        rounds_rows, warmup_rows = rows_of[number]
                        measured = await _measure_with_worker(
                            options,
                            dataset,
                            url,
                            rounds_rows,
                            warmup_rows,
                            broker,
                            ledger,
                            worker,
                            workdir / f"{name}.log",
                        )
                        results.append((phase, measured))
                finally:
                    ledger.close()
                    catalog.close()
            exported = sink.requests
    finally:
        broker.stop()
    result = results[0][1]
    off = [r for phase, r in results if phase == "tracing off"]
    on = [r for phase, r in results if phase == "tracing on"]
    if on:
        if not exported:
            raise BenchmarkError("the worker with tracing on exported no spans")

        def median_of(phases: list[dict[str, Any]], key: str) -> float:
            return float(statistics.median(r[key] for r in phases))

        off_rate, on_rate = (
            median_of(off, "baylink_records_per_s"),
            median_of(on, "baylink_records_per_s"),
        )
        off_cpu = median_of(off, "worker_cpu_us_per_record")
        on_cpu = median_of(on, "worker_cpu_us_per_record")
        result["tracing"] = {
            "pairs": len(on),
            "off_records_per_s": off_rate,
            "on_records_per_s": on_rate,
            "off_worker_cpu_us_per_record": off_cpu,
            "on_worker_cpu_us_per_record": on_cpu,
            "off_ratio": median_of(off, "ratio"),
            "on_ratio": median_of(on, "ratio"),
            "per_phase": [
                {
                    "phase": phase,
                    "records_per_s": r["baylink_records_per_s"],
                    "ratio": r["ratio"],
                    "worker_cpu_us_per_record": r["worker_cpu_us_per_record"],
                }
                for phase, r in results
            ],
            # Rates move with the machine; CPU per record is the steadier overhead figure.
            "slowdown": round(1 - on_rate / off_rate, 4),
            "cpu_overhead": round(on_cpu / off_cpu - 1, 4),
            "otlp_requests": exported,
        }
    return result


def _phase_rows(
    options: Options, dataset: DatasetDefinition, phases: int
) -> list[tuple[list[list[Row]], list[Row]]]:
    """Per phase, its rounds' rows and its warm-up rows; every set a day apart from the
    others, so no two share a record key."""
    total = phases * options.rounds
    out = []
    for phase in range(phases):
        rounds = []
        for n in range(options.rounds):
            index = phase * options.rounds + n
            rows = make_rows(options.records, seed=7 + index)
            shift = timedelta(days=2 * (total - index))
            for row in rows:
                row["observed_at"] -= shift
            rounds.append(rows)
        warmup = make_rows(
            dataset.partitions * 50,
            seed=99 + phase,
            start=rounds[0][0]["observed_at"] - timedelta(days=1),
        )
        out.append((rounds, warmup))
    return out


class OtlpSink:
    """Accepts OTLP/HTTP exports and drops them: what a collector costs the exporting worker,
    without a collector's own work on this machine's CPUs."""

    def __init__(self) -> None:
        self.requests = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def exporter_env(self) -> dict[str, str]:
        host, port = self._server.server_address[:2]
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{host!s}:{port}",
        }

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Round:
    baseline: BaselineResult
    encode_seconds: float
    seconds: float
    publish_seconds: float
    messages: int
    records: int

    @property
    def baseline_rate(self) -> float:
        return self.records / self.baseline.seconds

    @property
    def baylink_rate(self) -> float:
        return self.records / self.seconds


async def _measure_round(
    options: Options,
    number: int,
    dataset: DatasetDefinition,
    rows: list[Row],
    broker: TansuBroker,
    ledger: IngestLedger,
    worker: subprocess.Popen[bytes],
    producer: AIOKafkaProducer,
) -> Round:
    """One baseline run and one baylink run over the same rows, back to back."""
    topic = dataset.ingest_topic
    provenance = make_provenance(dataset, f"measured-{number}")
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
    encode_started = time.perf_counter()
    batches = encode_like_publish_rows(rows, dataset, options.batch_size)
    encode_seconds = time.perf_counter() - encode_started
    log(f"round {number}: baseline, {len(batches)} messages, raw aiokafka produce then consume …")
    baseline = await run_baseline(
        broker.bootstrap,
        f"{topic}.raw-baseline-{number}",
        dataset.partitions,
        batches,
        headers,
        options.timeout,
    )
    log(
        f"  {len(rows) / baseline.seconds:,.0f} records/s ({baseline.seconds:.3f} s: produce "
        f"{baseline.produce_seconds:.3f} s, consume {baseline.consume_seconds:.3f} s; "
        f"{baseline.bytes / MB:.1f} MiB)"
    )
    log(f"round {number}: baylink, publishing {len(rows):,} rows and waiting for the store …")
    t0 = time.perf_counter()
    report = await publish_rows(producer, dataset, rows, provenance, batch_size=options.batch_size)
    published = time.perf_counter()
    await wait_until_stored(
        ledger, topic, report.last_offsets(), worker, options.timeout, f"round {number}"
    )
    t1 = time.perf_counter()
    log(
        f"  {len(rows) / (t1 - t0):,.0f} records/s ({t1 - t0:.3f} s: publish "
        f"{published - t0:.3f} s, then {t1 - published:.3f} s until stored; "
        f"{report.messages} messages)"
    )
    return Round(baseline, encode_seconds, t1 - t0, published - t0, report.messages, len(rows))


async def _measure_with_worker(
    options: Options,
    dataset: DatasetDefinition,
    url: str,
    rounds_rows: list[list[Row]],
    warmup_rows: list[Row],
    broker: TansuBroker,
    ledger: IngestLedger,
    worker: subprocess.Popen[bytes],
    worker_log: Path,
) -> dict[str, Any]:
    topic = dataset.ingest_topic
    sampler = RssSampler(worker.pid)
    sampler.start()
    producer = make_producer(broker.bootstrap)
    await producer.start()
    rounds: list[Round] = []
    try:
        # Warm-up: until the worker holds every partition and has stored a message on each.
        log(f"warming the worker up (pid {worker.pid}; the group join takes ~30 s) …")
        started = time.monotonic()
        warm = await publish_rows(
            producer, dataset, warmup_rows, make_provenance(dataset, "warm-up"), batch_size=50
        )
        try:
            await wait_until_stored(
                ledger, topic, warm.last_offsets(), worker, options.join_timeout, "warm-up"
            )
        except BenchmarkError as error:
            raise BenchmarkError(
                f"{error}\n--- worker log ---\n{worker_log_tail(worker_log)}"
            ) from None
        log(f"  worker ready after {time.monotonic() - started:.1f} s")
        accepted_before, rejected_before = totals_of(ledger, dataset)

        with py_spy(worker.pid, options.profile_worker, options.profile_wall):
            rss_start = sampler.sample_now()
            cpu_start = worker_cpu_seconds(worker.pid)
            mono0 = time.monotonic()
            for number, rows in enumerate(rounds_rows, start=1):
                rounds.append(
                    await _measure_round(
                        options, number, dataset, rows, broker, ledger, worker, producer
                    )
                )
            mono1 = time.monotonic()
            cpu_seconds = worker_cpu_seconds(worker.pid) - cpu_start
        rss_end = sampler.sample_now()
        rss_peak = max(sampler.peak_between(mono0, mono1), rss_start, rss_end)
        rss_half = sampler.at((mono0 + mono1) / 2)
    finally:
        await producer.stop()
        sampler.stop()

    expected = options.records * options.rounds
    accepted_after, rejected_after = totals_of(ledger, dataset)
    accepted = accepted_after - accepted_before
    rejected = rejected_after - rejected_before
    if accepted != expected or rejected != 0:
        raise BenchmarkError(
            f"expected {expected} accepted and 0 rejected, the store has {accepted} "
            f"accepted and {rejected} rejected"
        )
    # Medians: one slow round (another process on a shared machine) moves neither figure.
    baylink_rate = statistics.median(r.baylink_rate for r in rounds)
    baseline_rate = statistics.median(r.baseline_rate for r in rounds)
    result: dict[str, Any] = {
        "records": options.records,
        "rounds": options.rounds,
        "batch_size": options.batch_size,
        "messages": sum(r.messages for r in rounds),
        "partitions": dataset.partitions,
        "event_store": url.split(":", 1)[0] if options.event_store else "sqlite (temporary)",
        "event_store_url": url,
        "baylink_records_per_s": round(baylink_rate, 1),
        "baseline_records_per_s": round(baseline_rate, 1),
        "ratio": round(baylink_rate / baseline_rate, 4),
        "per_round": [
            {
                "baylink_records_per_s": round(r.baylink_rate, 1),
                "baylink_seconds": round(r.seconds, 4),
                "baylink_publish_seconds": round(r.publish_seconds, 4),
                "baseline_records_per_s": round(r.baseline_rate, 1),
                "baseline_seconds": round(r.baseline.seconds, 4),
                "baseline_produce_seconds": round(r.baseline.produce_seconds, 4),
                "baseline_consume_seconds": round(r.baseline.consume_seconds, 4),
                "baseline_encode_seconds": round(r.encode_seconds, 4),
                "baseline_bytes": r.baseline.bytes,
                "ratio": round(r.baylink_rate / r.baseline_rate, 4),
            }
            for r in rounds
        ],
        "accepted": accepted,
        "rejected": rejected,
        # Steadier than the rates on a shared machine: what the worker itself spent.
        "worker_cpu_us_per_record": round(cpu_seconds / expected * 1e6, 2),
        "worker_rss_mb_start": round(rss_start / MB, 1),
        "worker_rss_mb_peak": round(rss_peak / MB, 1),
        "worker_rss_mb_end": round(rss_end / MB, 1),
        "worker_rss_mb_half": round(rss_half / MB, 1),
        "worker_rss_samples": len(sampler.samples),
        "cpus": os.cpu_count(),
        "reader_processes": options.reader_processes,
        "python": sys.version.split()[0],
    }
    return result


def report(result: dict[str, Any]) -> None:
    log("")
    log(
        f"{result['rounds']} rounds of {result['records']:,} records, {result['messages']} "
        f"messages of up to {result['batch_size']} ({result['partitions']} partitions), "
        f"store {result['event_store']}; medians:"
    )
    log(f"  baylink end to end   {result['baylink_records_per_s']:>12,.0f} records/s")
    log(f"  raw aiokafka         {result['baseline_records_per_s']:>12,.0f} records/s")
    log(f"  ratio                {result['ratio']:>12.3f}")
    log(f"  worker CPU           {result['worker_cpu_us_per_record']:>12.2f} µs per record")
    tracing = result.get("tracing")
    if tracing:
        log(
            f"  tracing off / on     {tracing['off_records_per_s']:>12,.0f} / "
            f"{tracing['on_records_per_s']:,.0f} records/s, medians of {tracing['pairs']} pairs "
            f"(slower by {tracing['slowdown']:.1%}; worker CPU "
            f"{tracing['on_worker_cpu_us_per_record']:.2f} µs per record, "
            f"{tracing['cpu_overhead']:+.1%}; {tracing['otlp_requests']} OTLP exports)"
        )
    log(
        f"  worker RSS (MiB)     start {result['worker_rss_mb_start']}, "
        f"half-way {result['worker_rss_mb_half']}, peak {result['worker_rss_mb_peak']}, "
        f"end {result['worker_rss_mb_end']}"
    )


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="baylink end-to-end ingest throughput against raw aiokafka."
    )
    parser.add_argument("--records", type=int, default=200_000, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=1000, help="default: %(default)s")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="baseline/baylink pairs, back to back; medians are reported [default: %(default)s]",
    )
    parser.add_argument(
        "--event-store",
        metavar="URL",
        default=None,
        help="an empty sqlite:////ABS/PATH or postgresql://... store [default: a temp SQLite]",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--tracing-pairs",
        type=int,
        default=2,
        help="phases with tracing off then on (a worker exporting spans over OTLP), "
        "alternating; 0 measures tracing off only [default: %(default)s]",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds a measured phase may take"
    )
    parser.add_argument(
        "--join-timeout",
        type=float,
        default=180.0,
        help="seconds the worker may take to join and store the warm-up",
    )
    parser.add_argument(
        "--profile-worker",
        metavar="PATH",
        type=Path,
        default=None,
        help="sample the worker with py-spy during the measured run, collapsed stacks to PATH",
    )
    parser.add_argument(
        "--profile-wall",
        action="store_true",
        help="with --profile-worker: sample every thread, waiting included (not only the GIL)",
    )
    parser.add_argument(
        "--reader-processes",
        type=int,
        default=None,
        help="the worker's BAYLINK_STREAMS_READER_PROCESSES [default: the worker's own]",
    )
    args = parser.parse_args(argv)
    if args.reader_processes is not None and args.reader_processes < 0:
        parser.error("--reader-processes cannot be negative")
    if args.tracing_pairs < 0:
        parser.error("--tracing-pairs cannot be negative")
    if args.records < 1 or args.batch_size < 1 or args.rounds < 1:
        parser.error("--records, --batch-size and --rounds must be positive")
    return Options(
        args.records,
        args.rounds,
        args.tracing_pairs,
        args.batch_size,
        args.event_store,
        args.json,
        args.timeout,
        args.join_timeout,
        args.profile_worker,
        args.profile_wall,
        args.reader_processes,
    )


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    # Even when started in the background with SIGINT ignored, Ctrl-C/SIGINT stops the run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="baylink-bench-") as directory:
            result = asyncio.run(measure(options, Path(directory)))
    except BenchmarkError as error:
        log(f"benchmark failed: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; the broker and worker were stopped")
        return 130
    report(result)
    if options.as_json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
