"""`baylink connector run` in tests: config files and the runner as a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.platform import wait_until


def write_config(path: Path, *sources: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"sources": list(sources)}, sort_keys=False))
    return path


@dataclass
class ConnectorProcess:
    """A long-running `baylink connector run CONFIG`, its output in a log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> ConnectorProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "baylink", "connector", "run", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
            )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 60, count: int = 1) -> None:
        wait_until(lambda: self.output().count(text) >= count, timeout, what=repr(text))

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            raise AssertionError(f"the connector ignored SIGTERM:\n{self.output()}") from None
        self.exit_codes.append(code)
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
