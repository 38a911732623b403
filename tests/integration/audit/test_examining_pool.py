"""Worker processes examining the log ahead of a verifying pass change how fast it runs, never
what it reports: the same findings in steps, when a worker dies, and with no worker at all."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.log_examination import ExaminingPool
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
