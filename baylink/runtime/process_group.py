"""Stopping children together with everything they spawned, via their own process groups."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence


def signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Send `signum` to the process group led by `process` (started with a new session)."""
    # The group outlives its leader while grandchildren remain, so this also reaches
    # processes left behind by a leader that has already exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop_groups(processes: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every group at once, wait up to `grace` seconds in total, then SIGKILL."""
    for process in processes:
        signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
    for process in processes:
        # Grandchildren that ignored SIGTERM must not outlive their leader as orphans.
        signal_group(process, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM one group, wait up to `grace` seconds for its leader, then SIGKILL the group."""
    stop_groups([process], grace)


def describe_exit(returncode: int) -> str:
    """Say how a process ended: 'status 3' or 'signal SIGKILL'."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"
