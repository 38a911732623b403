"""Running baylink's own processes in tests: the worker, the CLI, and checks on the store."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

from domain.dataset import DatasetDefinition
from domain.ingest import chain_id_for, verify_chain
from domain.provenance import Provenance
from storage.ingestion import IngestLedger
from streams import wire
from streams.publisher import PublishReport, make_producer, publish_rows

REPO = Path(__file__).resolve().parents[2]
SENSOR_READINGS = REPO / "tests" / "fixtures" / "datasets" / "sensor-readings.yaml"
REGIONS = ("hk", "gd-shenzhen", "mo")


def dataset_file(directory: Path, suffix: str, partitions: int | None = None) -> Path:
    """A copy of the sensor-readings definition under its own id, so tests never share topics."""
    document: dict[str, Any] = yaml.safe_load(SENSOR_READINGS.read_text())
    document["id"] = f"test.traffic.readings-{suffix}"
    if partitions is not None:
        document["partitions"] = partitions
    path = directory / f"readings-{suffix}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def unique_suffix() -> str:
    return uuid.uuid4().hex[:10]


def reading_rows(
    count: int, *, prefix: str = "s", start: datetime | None = None
) -> list[dict[str, Any]]:
    """``count`` valid readings with distinct keys, spread over three regions."""
    base = (start or datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    return [
        {
            "sensor_id": f"{prefix}{i % 997}",
            "observed_at": base + timedelta(seconds=i),
            "lat": 22.2 + (i % 100) / 1000,
            "lon": 113.9 + (i % 50) / 1000,
            "speed": float(i % 120),
            "volume": i % 40,
            "lane_closed": i % 7 == 0,
            "region": REGIONS[i % len(REGIONS)],
        }
        for i in range(count)
    ]


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    fields = list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            )
    return path


@dataclass
class PlatformEnv:
    """Addresses one test's processes share."""

    broker: str
    event_store_url: str
    app_id: str
    workdir: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "BAYLINK_STREAMS_BROKER": self.broker,
            "BAYLINK_STORAGE_EVENT_STORE_URL": self.event_store_url,
            "BAYLINK_STREAMS_APP_ID": self.app_id,
            "BAYLINK_DATA_DIR": str(self.workdir / "data"),
            **extra,
        }

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "baylink", *args],
            env=self.env(**(extra_env or {})),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"baylink {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result


@dataclass
class WorkerProcess:
    """A `baylink worker` subprocess; restartable, killable."""

    platform: PlatformEnv
    name: str = "worker"
    extra_env: dict[str, str] = field(default_factory=dict)
    log_level: str = "WARNING"
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.platform.workdir / f"{self.name}.log"

    def start(self, **extra_env: str) -> WorkerProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "baylink", "worker", "--log-level", self.log_level],
            env=self.platform.env(**{**self.extra_env, **extra_env}),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.platform.workdir,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """Process ids of the worker's reader processes (none if it reads in itself)."""
        if not self.alive() or self.process is None:
            return []
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_exit(self, timeout: float) -> int | None:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class StoreAudit:
    """What the store holds for a dataset, recomputed from every batch."""

    accepted_records: int
    distinct_record_ids: int
    rejected: int
    duplicates: int
    batches: int
    rejection_reasons: dict[str, int]


def audit_store(ledger: IngestLedger, dataset: DatasetDefinition) -> StoreAudit:
    """Verify every chain of the dataset and count what it holds."""
    accepted = rejected = duplicates = batches = 0
    ids: set[str] = set()
    reasons: dict[str, int] = {}
    for partition in range(dataset.partitions):
        chain = list(ledger.batches(chain_id_for(dataset.id, partition)))
        verify_chain(chain)
        for batch in chain:
            batches += 1
            records = batch.accepted()
            accepted += len(records)
            ids.update(str(r[0]) for r in records)
            duplicates += batch.duplicate_count
            for row in batch.rejections:
                rejected += 1
                reasons[str(row[1])] = reasons.get(str(row[1]), 0) + 1
    return StoreAudit(accepted, len(ids), rejected, duplicates, batches, reasons)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended and only waits to be reaped)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: Any, timeout: float, interval: float = 0.2, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def provenance_for(source: str, region: str = "gd-shenzhen") -> Provenance:
    """Provenance of a test payload named ``source``."""
    return Provenance(
        source_uri=f"file:///{source}",
        received_at=datetime.now(UTC),
        payload_sha256=hashlib.sha256(source.encode()).hexdigest(),
        connector="test",
        connector_version="1",
        region=region,
        wire_schema_version=wire.WIRE_SCHEMA_VERSION,
    )


def publish_readings(
    bootstrap: str, dataset: DatasetDefinition, count: int, prefix: str, batch_size: int
) -> PublishReport:
    """Publish ``count`` fresh readings straight to the dataset's ingest topic."""

    async def publish() -> PublishReport:
        producer = make_producer(bootstrap)
        await producer.start()
        try:
            return await publish_rows(
                producer,
                dataset,
                reading_rows(count, prefix=prefix),
                provenance_for(f"{prefix}.csv"),
                batch_size=batch_size,
            )
        finally:
            await producer.stop()

    return asyncio.run(publish())


def stored_all(ledger: IngestLedger, topic: str, targets: dict[int, int]) -> bool:
    """Whether the store has tracked every partition up to the given offsets."""
    return all(
        (ledger.resume_offset(topic, partition) or -1) >= offset
        for partition, offset in targets.items()
    )
