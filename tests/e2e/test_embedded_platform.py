"""`baylink up` on the embedded default, used the way a new user would use it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from baylink.runtime.ports import free_port
from baylink.runtime.state import RuntimeState, state_path
from tests.support.embedded import admin_headers, baylink, clean_env, running_platform
from tests.support.platform import SENSOR_READINGS, reading_rows, wait_until, write_csv

pytestmark = pytest.mark.e2e


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    data_dir = tmp_path / "baylink"
    port = free_port()
    with running_platform(data_dir, port) as process:
        yield process, data_dir, port


def _all_record_ids(url: str, headers: dict[str, str]) -> set[str]:
    """Page through the records API with its cursor; every record must come once."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        response = httpx.get(url, params=params, headers=headers, timeout=30)
        page = response.raise_for_status().json()
        seen += [record["record_id"] for record in page["records"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    return set(seen)


def test_up_runs_the_platform_and_stops_cleanly_on_sigterm(
    running_up: tuple[subprocess.Popen[str], Path, int], tmp_path: Path
) -> None:
    process, data_dir, port = running_up
    baylink(data_dir, "dataset", "register", str(SENSOR_READINGS))
    readings = write_csv(tmp_path / "readings.csv", reading_rows(3_000, prefix="e2e"))

    ingested = json.loads(
        baylink(
            data_dir,
            "ingest",
            str(readings),
            "--dataset",
            "gba.traffic.sensor-readings",
            "--wait",
            "--json",
        ).stdout
    )
    state = RuntimeState.read(data_dir)
    worker_pid = state.pids["worker"]
    os.kill(worker_pid, signal.SIGKILL)
    wait_until(
        lambda: RuntimeState.read(data_dir).pids["worker"] != worker_pid,
        60,
        what="the supervisor to restart the worker",
    )
    more = write_csv(tmp_path / "more.csv", reading_rows(500, prefix="after-restart"))
    after_restart = json.loads(
        baylink(
            data_dir,
            "ingest",
            str(more),
            "--dataset",
            "gba.traffic.sensor-readings",
            "--wait",
            "--json",
        ).stdout
    )
    listed = json.loads(baylink(data_dir, "dataset", "list", "--json").stdout)
    api = f"http://127.0.0.1:{port}/v1/datasets/gba.traffic.sensor-readings"
    served = _all_record_ids(f"{api}/records", admin_headers(data_dir))
    children = [psutil.Process(pid) for pid in RuntimeState.read(data_dir).pids.values()]

    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=60)
    time.sleep(0.5)

    assert ingested["accepted"] == 3_000
    assert after_restart["accepted"] == 500
    assert listed == [
        {
            "id": "gba.traffic.sensor-readings",
            "kind": "traffic",
            "owner_region": "gd-shenzhen",
            "classification": "sensitive",
            "accepted": 3_500,
            "rejected": 0,
            "position": listed[0]["position"],
        }
    ]
    assert len(served) == 3_500
    assert exit_code == 0
    assert not [p.pid for p in children if p.is_running() and p.status() != "zombie"]
    assert not state_path(data_dir).exists()


def test_a_second_up_on_the_same_data_dir_is_refused_in_one_line(
    running_up: tuple[subprocess.Popen[str], Path, int],
) -> None:
    _process, data_dir, _port = running_up

    result = subprocess.run(
        [sys.executable, "-m", "baylink", "up", "--api-port", str(free_port())],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("baylink: error: baylink is already running from")
    )


def test_children_stop_when_up_itself_is_killed(
    running_up: tuple[subprocess.Popen[str], Path, int],
) -> None:
    process, data_dir, _port = running_up
    state = RuntimeState.read(data_dir)
    children = [
        psutil.Process(pid)
        for name, pid in state.pids.items()
        if name in ("worker", "api", "snapshots", "broker")
    ]

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    wait_until(
        lambda: not [p for p in children if p.is_running() and p.status() != "zombie"],
        30,
        what="the broker, worker, snapshots and API to stop with baylink up",
    )
