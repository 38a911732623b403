"""`baylink api` serves the probes, and refuses a taken port with one clear line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from baylink.runtime.ports import free_port

pytestmark = pytest.mark.integration


def baylink(*args: str) -> list[str]:
    return [sys.executable, "-m", "baylink", *args]


def wait_for_health(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"baylink api exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout} s")


def test_baylink_api_answers_healthz_and_stops_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        baylink("api", "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process)

        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200

        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the parent sees the cause.
        assert process.wait(timeout=15) in {0, -signal.SIGTERM}
    finally:
        process.kill()
        process.wait()


def test_baylink_api_reads_its_port_from_the_environment() -> None:
    port = free_port()
    env = os.environ | {"BAYLINK_API_PORT": str(port)}
    process = subprocess.Popen(
        baylink("api"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        process.kill()
        process.wait()


def test_baylink_api_on_a_taken_port_fails_with_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]

        result = subprocess.run(
            baylink("api", "--port", str(port)),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"baylink: error: port {port} on 127.0.0.1 is already in use (by pid {os.getpid()}: "
    )
    assert result.stderr.count("\n") == 1
