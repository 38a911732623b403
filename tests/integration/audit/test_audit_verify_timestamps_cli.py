"""`baylink audit verify` checks heads' RFC 3161 timestamps against the TSA certificates the
auditor names (--tsa-cert or BAYLINK_STORAGE_TREE_HEAD_TSA_CA_FILE), and with
--require-timestamps refuses a head that carries none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError
from storage.head_timestamps import TimestampAuthority, load_trust_anchors
from storage.object_store_local import LocalObjectStore
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.tsa import LocalTsa, local_tsa

pytestmark = pytest.mark.integration

TSA_CA_ENV = "BAYLINK_STORAGE_TREE_HEAD_TSA_CA_FILE"


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with local_tsa() as running:
        yield running


def data_dir_of(directory: Path, tsa: TimestampAuthority | None) -> Path:
    build_store(
        f"sqlite:///{directory / 'events.sqlite'}",
        LocalObjectStore(directory / "objects"),
        rounds=1,
        messages=16,
        tsa=tsa,
    )
    pem = NODE_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (directory / "node-key.pem").write_bytes(pem)
    return directory


def verify(*options: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["audit", "verify", *options])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_timestamped_heads_verify_under_the_tsa_ca(
    tmp_path: Path, tsa: LocalTsa, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamped = TimestampAuthority(tsa.url, load_trust_anchors(tsa.ca_file))
    data_dir = str(data_dir_of(tmp_path, stamped))

    code, out, err = verify("--data-dir", data_dir, "--tsa-cert", str(tsa.ca_file))
    required = verify(
        "--data-dir", data_dir, "--tsa-cert", str(tsa.ca_file), "--require-timestamps"
    )
    unanchored, _, unanchored_err = verify("--data-dir", data_dir)
    monkeypatch.setenv(TSA_CA_ENV, str(tsa.ca_file))
    from_env, env_out, _ = verify("--data-dir", data_dir, "--json")

    assert code == 0, err
    assert out.startswith("verified ")
    assert required[0] == 0, required[2]
    assert unanchored == 1
    assert "(head_timestamp_unverifiable)" in unanchored_err
    assert len(unanchored_err.strip().splitlines()) == 1
    assert from_env == 0
    assert json.loads(env_out)["ok"] is True


def test_heads_without_timestamps_fail_only_when_required(tmp_path: Path, tsa: LocalTsa) -> None:
    data_dir = str(data_dir_of(tmp_path, None))

    plain, _, plain_err = verify("--data-dir", data_dir)
    code, out, err = verify(
        "--data-dir", data_dir, "--tsa-cert", str(tsa.ca_file), "--require-timestamps", "--json"
    )

    assert plain == 0, plain_err
    assert code == 1
    failure = json.loads(out)["failure"]
    assert failure["reason"] == "head_timestamp_missing"
    assert "carries no timestamp" in failure["message"]
    assert err.startswith(f"baylink: verify failed at log position {failure['position']} ")


def test_unreadable_tsa_certificates_are_one_clear_error(tmp_path: Path) -> None:
    data_dir = str(data_dir_of(tmp_path, None))
    (tmp_path / "not.pem").write_text("no certificate here\n")
    with pytest.raises(BaylinkCliError, match="holds no PEM certificate"):
        verify("--data-dir", data_dir, "--tsa-cert", str(tmp_path / "not.pem"))
    with pytest.raises(BaylinkCliError, match="cannot read TSA certificates"):
        verify("--data-dir", data_dir, "--tsa-cert", str(tmp_path / "missing.pem"))
