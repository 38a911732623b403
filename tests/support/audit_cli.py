"""`baylink audit ...` run in-process, as the audit tests call it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from typer.testing import CliRunner

from baylink.cli import app
from storage.object_store_local import LocalObjectStore
from tests.support.audited_store import NODE_KEY, build_store


def run_audit(*arguments: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr; an error the CLI would print as one line is raised."""
    result = CliRunner().invoke(app, ["audit", *arguments])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stopped_platform(directory: Path) -> Path:
    """A stopped platform's data dir: its SQLite store, objects and node key."""
    build_store(f"sqlite:///{directory / 'events.sqlite'}", LocalObjectStore(directory / "objects"))
    pem = NODE_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (directory / "node-key.pem").write_bytes(pem)
    return directory
