"""`baylink up` in tests, started the way a user starts it, and the CLI against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from baylink.runtime.admin_token import admin_token_path
from baylink.runtime.state import state_path
from tests.support.platform import wait_until


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any BAYLINK_ setting, pointed at ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYLINK_")}
    env["BAYLINK_DATA_DIR"] = str(data_dir)
    return env | extra


def baylink(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the platform of ``data_dir``; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "baylink", *args],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def admin_headers(data_dir: Path) -> dict[str, str]:
    """The Authorization header with the admin token `baylink up` keeps in ``data_dir``."""
    return {"Authorization": f"Bearer {admin_token_path(data_dir).read_text().strip()}"}


def served_records(
    data_dir: Path, port: int, dataset: str, limit: int = 1000
) -> list[dict[str, object]]:
    """The first ``limit`` records the API of the platform in ``data_dir`` serves of ``dataset``,
    asked with the admin token."""
    page = (
        httpx.get(
            f"http://127.0.0.1:{port}/v1/datasets/{dataset}/records",
            params={"limit": str(limit)},
            headers=admin_headers(data_dir),
            timeout=30,
        )
        .raise_for_status()
        .json()
    )
    records = page["records"]
    assert isinstance(records, list)
    return records


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_platform(
    data_dir: Path, port: int, **extra_env: str
) -> Iterator[subprocess.Popen[str]]:
    """`baylink up` until the API answers; stopped (SIGTERM, then SIGKILL) on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "baylink", "up", "--api-port", str(port)],
        env=clean_env(data_dir, **extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: state_path(data_dir).exists(), 60, what="runtime.json")
        wait_until(
            lambda: healthy(f"http://127.0.0.1:{port}/healthz"), 60, what="the API to answer"
        )
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
