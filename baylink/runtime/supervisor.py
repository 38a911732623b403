"""A small supervisor: keeps child processes running and stops all of them on a signal."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from baylink.runtime.errors import ChildRestartLimitError, ChildStartError
from baylink.runtime.parent_watch import SUPERVISOR_ENV
from baylink.runtime.process_group import describe_exit, signal_group, stop_groups

logger = logging.getLogger(__name__)

_POLL_INTERVAL = 0.1
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class ChildSpec:
    """How to start one supervised process; `env` is added to the supervisor's environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    log_path: Path | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a dead child, and when to give up on it."""

    initial_backoff: float = 0.5
    max_backoff: float = 10.0
    # More than `max_restarts` exits within `window` seconds means the child cannot run.
    max_restarts: int = 5
    window: float = 60.0
    # A child that ran this long before dying is restarted quickly again.
    stable_after: float = 30.0
    stop_grace: float = 10.0


class _Child:
    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.exits: collections.deque[float] = collections.deque()
        self.consecutive_failures = 0
        self.restart_at: float | None = None
        self.log: IO[bytes] | None = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


class Supervisor:
    """Runs children in their own process groups, restarts them with backoff, stops them all."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        policy: RestartPolicy | None = None,
        on_start: Callable[[str, int], None] | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self._children = [_Child(spec) for spec in specs]
        self._policy = policy or RestartPolicy()
        self._on_start = on_start
        self._stop_requested: int | None = None

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the children that are running now, by name."""
        return {
            child.spec.name: child.process.pid
            for child in self._children
            if child.process is not None and child.is_running()
        }

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask `run` to stop all children and return; safe from signal handlers and threads."""
        self._stop_requested = signum

    def start(self) -> None:
        """Start every child that is not running; on failure stop the ones already started."""
        for child in self._children:
            if not child.is_running():
                try:
                    self._spawn(child)
                except ChildStartError:
                    self.stop()
                    raise

    def run(self) -> int:
        """Supervise until SIGINT/SIGTERM or `request_stop`; return 0 after a clean stop.

        Raises ChildRestartLimitError, after stopping every child, when one keeps dying.
        """
        with self._stop_signals_handled():
            try:
                self.start()
                while self._stop_requested is None:
                    self._tend_children()
                    time.sleep(_POLL_INTERVAL)
            finally:
                self.stop()
        return 0

    def stop(self) -> None:
        """Stop all children and everything they spawned: SIGTERM, grace period, SIGKILL."""
        processes = [child.process for child in self._children if child.process is not None]
        stop_groups(processes, self._policy.stop_grace)
        for child in self._children:
            child.process = None
            child.restart_at = None
            child.close_log()

    def _tend_children(self) -> None:
        now = time.monotonic()
        for child in self._children:
            if child.is_running():
                continue
            if child.restart_at is None:
                self._schedule_restart(child, now)
            elif now >= child.restart_at:
                child.restart_at = None
                self._spawn(child)

    def _schedule_restart(self, child: _Child, now: float) -> None:
        assert child.process is not None
        how = describe_exit(child.process.returncode)
        # Whatever the dead leader left behind in its group goes with it.
        signal_group(child.process, signal.SIGKILL)
        child.close_log()
        policy = self._policy
        child.exits.append(now)
        while child.exits and child.exits[0] < now - policy.window:
            child.exits.popleft()
        if len(child.exits) > policy.max_restarts:
            raise ChildRestartLimitError(
                f"{child.spec.name} exited {len(child.exits)} times within "
                f"{policy.window:g} s (last: {how}); gave up and stopped everything"
                + (f" (log: {child.spec.log_path})" if child.spec.log_path else "")
            )
        if now - child.started_at >= policy.stable_after:
            child.consecutive_failures = 0
        delay = min(policy.initial_backoff * 2**child.consecutive_failures, policy.max_backoff)
        child.consecutive_failures += 1
        child.restart_at = now + delay
        logger.warning("%s exited with %s; restarting in %.1f s", child.spec.name, how, delay)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            child.log = spec.log_path.open("ab")
        try:
            child.process = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=child.log,
                stderr=subprocess.STDOUT if child.log is not None else None,
                env={**os.environ, **spec.env, SUPERVISOR_ENV: str(os.getpid())},
                cwd=spec.cwd,
                # Its own process group, so stopping it reaches whatever it spawns, and a
                # Ctrl-C at the terminal reaches only the supervisor, which then stops it.
                start_new_session=True,
            )
        except OSError as error:
            child.close_log()
            raise ChildStartError(f"cannot start {spec.name} ({spec.argv[0]}): {error}") from None
        child.started_at = time.monotonic()
        logger.info("started %s (pid %d)", spec.name, child.process.pid)
        if self._on_start is not None:
            self._on_start(spec.name, child.process.pid)

    @contextlib.contextmanager
    def _stop_signals_handled(self) -> Iterator[None]:
        # Signal handlers can only be installed from the main thread; elsewhere (tests)
        # `request_stop` is the way to end `run`.
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signum)

        previous = {signum: signal.signal(signum, handle) for signum in _STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
