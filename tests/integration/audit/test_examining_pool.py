"""Worker processes examining the log ahead of a verifying pass change how fast it runs, never
what it reports: the same findings in steps, when a worker dies, and with no worker at all;
and they end with the pass, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from storage.examining_pool import ExaminingPool
from storage.log_verifier import AuditLedger, LogVerifier, VerifyReport
from storage.object_store_local import LocalObjectStore
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.stores import empty_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalObjectStore]]:
    with empty_store("sqlite", tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path_factory.mktemp("objects"))
        build_store(url, objects)
        yield url, objects


def one_pass(url: str, objects: LocalObjectStore) -> VerifyReport:
    ledger = AuditLedger(url)
    try:
        return LogVerifier(ledger, objects, NODE_KEY.public_key()).run()
    finally:
        ledger.close()


def test_a_pass_in_steps_with_workers_reports_what_one_pass_does(
    built: tuple[str, LocalObjectStore],
) -> None:
    url, objects = built
    expected = one_pass(url, objects)
    ledger, pool = AuditLedger(url), ExaminingPool(url, workers=3, span=5)
    try:
        verifier = LogVerifier(ledger, objects, NODE_KEY.public_key(), pool=pool)
        for until in (1, 17, 18, 60, expected.last_position // 2):
            assert verifier.run(until=until).last_position == until
        report = verifier.run()
    finally:
        pool.close()
        ledger.close()

    assert expected.ok
    assert expected.events > 100
    assert report == expected


def test_a_worker_killed_mid_pass_loses_nothing(built: tuple[str, LocalObjectStore]) -> None:
    url, objects = built
    expected = one_pass(url, objects)
    ledger, pool = AuditLedger(url), ExaminingPool(url, workers=2, span=3)
    try:
        verifier = LogVerifier(ledger, objects, NODE_KEY.public_key(), pool=pool)
        verifier.run(until=20)
        killed = pool.worker_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        report = verifier.run()
    finally:
        pool.close()
        ledger.close()

    assert killed, "no worker was running to kill"
    assert report == expected


def test_a_pool_needs_a_worker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        ExaminingPool(f"sqlite:///{tmp_path / 'events.sqlite'}", workers=0)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_end_when_the_pass_is_killed(built: tuple[str, LocalObjectStore]) -> None:
    url, _ = built
    script = (
        "import time\n"
        "from storage.examining_pool import ExaminingPool\n"
        f"pool = ExaminingPool({url!r}, workers=2)\n"
        "print(*pool.worker_pids(), flush=True)\n"
        "time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[3]
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=root
    ) as child:
        assert child.stdout is not None
        workers = [int(pid) for pid in child.stdout.readline().split()]
        child.kill()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(workers) == 2
    assert not [pid for pid in workers if running(pid)]
