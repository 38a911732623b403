"""The supervisor keeps children alive, gives up on hopeless ones and leaves no orphans."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from baylink.runtime.errors import ChildRestartLimitError, ChildStartError
from baylink.runtime.supervisor import ChildSpec, RestartPolicy, Supervisor

FAST = RestartPolicy(initial_backoff=0.05, max_backoff=0.2, stop_grace=2.0)

# Appends its pid to the file named by argv[1], lives argv[2] seconds, exits with argv[3].
SHORT_LIVED = """
import os, sys, time
with open(sys.argv[1], "a") as pids:
    pids.write(f"{os.getpid()}\\n")
time.sleep(float(sys.argv[2]))
sys.exit(int(sys.argv[3]))
"""

# Starts a grandchild that ignores SIGTERM, records both pids in argv[1], and waits forever
# ignoring SIGTERM itself, so that only the supervisor's SIGKILL can end either of them.
STUBBORN_PARENT = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(sys.argv[1] + ".tmp", "w") as pids:
    pids.write(f"{os.getpid()}\\n{grandchild.pid}\\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""

SUPERVISE = """
import sys
from pathlib import Path
from baylink.runtime.supervisor import ChildSpec, RestartPolicy, Supervisor
out, child = Path(sys.argv[1]), sys.argv[2]
specs = [ChildSpec(name, [sys.executable, child, str(out / name)]) for name in ("api", "worker")]
sys.exit(Supervisor(specs, RestartPolicy(stop_grace=1.0)).run())
"""


def script(directory: Path, name: str, source: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            continue


@pytest.fixture
def in_background() -> Iterator[Callable[[Supervisor], Future[int]]]:
    started: list[Supervisor] = []
    with ThreadPoolExecutor() as pool:

        def run(supervisor: Supervisor) -> Future[int]:
            started.append(supervisor)
            return pool.submit(supervisor.run)

        yield run
        for supervisor in started:
            supervisor.request_stop()


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_a_dying_child_is_restarted(
    tmp_path: Path, in_background: Callable[[Supervisor], Future[int]]
) -> None:
    pid_file = tmp_path / "pids"
    child = script(tmp_path, "short_lived.py", SHORT_LIVED)
    supervisor = Supervisor(
        [ChildSpec("worker", [sys.executable, child, str(pid_file), "0.2", "1"])], FAST
    )

    outcome = in_background(supervisor)
    wait_for(lambda: len(lines(pid_file)) >= 3)
    supervisor.request_stop()

    assert outcome.result(timeout=15) == 0
    assert len(set(lines(pid_file))) == len(lines(pid_file))


def test_a_child_that_keeps_dying_makes_the_supervisor_give_up_and_stop_the_others(
    tmp_path: Path, in_background: Callable[[Supervisor], Future[int]]
) -> None:
    child = script(tmp_path, "short_lived.py", SHORT_LIVED)
    healthy_pids = tmp_path / "healthy"
    policy = RestartPolicy(initial_backoff=0.01, max_backoff=0.05, max_restarts=2, window=60)
    supervisor = Supervisor(
        [
            ChildSpec("healthy", [sys.executable, child, str(healthy_pids), "600", "0"]),
            ChildSpec("crasher", [sys.executable, child, str(tmp_path / "crasher"), "0", "3"]),
        ],
        policy,
    )

    outcome = in_background(supervisor)
    with pytest.raises(ChildRestartLimitError) as raised:
        outcome.result(timeout=30)

    assert str(raised.value).startswith(
        "crasher exited 3 times within 60 s (last: status 3); gave up and stopped everything"
    )
    assert "\n" not in str(raised.value)
    assert all(is_gone(int(pid)) for pid in lines(healthy_pids))


def test_a_program_that_cannot_start_is_reported_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    child = script(tmp_path, "short_lived.py", SHORT_LIVED)
    pid_file = tmp_path / "pids"
    supervisor = Supervisor(
        [
            ChildSpec("healthy", [sys.executable, child, str(pid_file), "600", "0"]),
            ChildSpec("missing", [str(tmp_path / "no-such-program")]),
        ],
        FAST,
    )

    with pytest.raises(ChildStartError, match=r"cannot start missing \("):
        supervisor.run()

    assert all(is_gone(int(pid)) for pid in lines(pid_file))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_every_child_and_grandchild(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    child = script(tmp_path, "stubborn_parent.py", STUBBORN_PARENT)
    supervise = script(tmp_path, "supervise.py", SUPERVISE)
    pid_files = [tmp_path / "api", tmp_path / "worker"]
    supervisor = subprocess.Popen([sys.executable, supervise, str(tmp_path), child])
    recorded: list[int] = []
    try:
        wait_for(lambda: all(path.exists() for path in pid_files))
        recorded = [int(pid) for path in pid_files for pid in lines(path)]
        assert len(recorded) == 4
        assert not any(is_gone(pid) for pid in recorded)

        supervisor.send_signal(stop_signal)

        assert supervisor.wait(timeout=15) == 0
        assert [pid for pid in recorded if not is_gone(pid)] == []
    finally:
        supervisor.kill()
        kill_all(recorded)
