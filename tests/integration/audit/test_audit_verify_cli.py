"""`baylink audit verify` checks a stopped platform offline, from its data dir or from an
event-store and an object-store URL: exit 0 and a summary when all holds, exit 1 and one line
naming the first bad log position otherwise; --json prints one report object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError
from storage.object_store_local import LocalObjectStore
from storage.tree_heads import HEAD_TOPIC
from tests.support.audit_cli import run_audit, stopped_platform
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.tampering import StoreTamperer

pytestmark = pytest.mark.integration

BATCH_TOPIC = "domain.ingest:IngestChain.BatchRecorded"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return stopped_platform(tmp_path)


@pytest.fixture
def postgres_platform(postgres_url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """A PostgreSQL store and the options an auditor gives: URLs and a public key."""
    objects = tmp_path / "objects"
    build_store(postgres_url, LocalObjectStore(objects))
    public = tmp_path / "node.pub.pem"
    public.write_bytes(
        NODE_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    options = [
        "--event-store",
        postgres_url,
        "--object-store",
        objects.as_uri(),
        "--public-key",
        str(public),
    ]
    return postgres_url, options


def verify(*options: str) -> tuple[int, str, str]:
    return run_audit("verify", *options)


def test_an_untampered_data_dir_verifies(data_dir: Path) -> None:
    code, out, err = verify("--data-dir", str(data_dir))
    json_code, json_out, _ = verify("--data-dir", str(data_dir), "--json")

    assert code == 0, err
    assert out.startswith("verified 144 events")
    assert "120 batches on 4 chains" in out
    assert json_code == 0
    report = json.loads(json_out)
    assert report["ok"] is True
    assert report["failure"] is None
    assert (report["events"], report["snapshots"]) == (144, 3)


def test_a_tampered_store_fails_with_one_line_naming_the_position(
    postgres_platform: tuple[str, list[str]],
) -> None:
    url, options = postgres_platform
    tamperer = StoreTamperer(url)
    try:
        row = [r for r in tamperer.rows() if r.topic == BATCH_TOPIC][7]
        state = bytearray(row.state)
        state[len(state) // 2] ^= 0x01
        tamperer.set_state(row.position, bytes(state))
    finally:
        tamperer.close()

    code, out, err = verify(*options)
    json_code, json_out, _ = verify(*options, "--json")
    alone_code, alone_out, _ = verify(*options, "--json", "--workers", "0")

    assert code == 1
    assert (alone_code, json.loads(alone_out)) == (json_code, json.loads(json_out))
    assert out == ""
    assert err.startswith(f"baylink: verify failed at log position {row.position} (")
    assert len(err.strip().splitlines()) == 1
    assert json_code == 1
    failure = json.loads(json_out)["failure"]
    assert failure["position"] == row.position


def test_an_untampered_postgres_store_verifies_under_the_auditors_key(
    postgres_platform: tuple[str, list[str]],
) -> None:
    code, out, err = verify(*postgres_platform[1])

    assert code == 0, err
    assert out.startswith("verified 144 events")


def test_heads_under_another_key_fail_at_the_first_head(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )

    code, _, err = verify("--data-dir", str(data_dir), "--public-key", str(other))

    assert code == 1
    assert "(head_signature)" in err
    assert "not the key given" in err


def test_recorded_heads_without_a_key_are_one_clear_error(data_dir: Path) -> None:
    (data_dir / "node-key.pem").unlink()

    with pytest.raises(BaylinkCliError, match="pass the public key they were signed with"):
        verify("--data-dir", str(data_dir))


def test_a_missing_store_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BAYLINK_STORAGE_", "BAYLINK_DATA"))
    }
    process = subprocess.run(
        [sys.executable, "-m", "baylink", "audit", "verify", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert process.returncode == 2
    assert (
        process.stderr.strip()
        == f"baylink: error: no event store at {tmp_path / 'none'}/events.sqlite"
    )


def test_given_urls_the_auditor_must_name_the_key(
    postgres_platform: tuple[str, list[str]],
) -> None:
    options = postgres_platform[1][:4]  # the URLs without --public-key

    with pytest.raises(BaylinkCliError, match="--public-key PEM"):
        verify(*options)


def _newest_head(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "head", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    head = json.loads(result.stdout)
    return head["tree_size"], head["root"]


def test_a_kept_head_that_still_holds_is_confirmed(data_dir: Path) -> None:
    size, root = _newest_head(data_dir)

    code, out, err = verify("--data-dir", str(data_dir), "--expect-head", f"{size}:{root}")
    _, json_out, _ = verify(
        "--data-dir", str(data_dir), "--expect-head", f"{size}:{root}", "--json"
    )

    assert code == 0, err
    assert f"the kept head of {size} events matches" in out
    assert json.loads(json_out)["kept_head_matched"] is True


def test_a_log_cut_back_below_a_kept_head_fails(data_dir: Path) -> None:
    size, root = _newest_head(data_dir)
    tamperer = StoreTamperer(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        rows = tamperer.rows()
        heads = [r.position for r in rows if r.topic == HEAD_TOPIC]
        # Everything after the head before the newest: a rollback that leaves every
        # remaining head and chain consistent.
        tamperer.delete_range(heads[-2] + 1, rows[-1].position)
    finally:
        tamperer.close()

    plain, _, _ = verify("--data-dir", str(data_dir))
    code, _, err = verify("--data-dir", str(data_dir), "--expect-head", f"{size}:{root}")

    assert plain == 0  # without the kept head, a cut tail is undetectable
    assert code == 1
    assert "(kept_head_beyond_log)" in err
    assert f"fewer than the {size}" in err


def test_a_kept_head_with_another_root_fails_where_its_tree_ends(data_dir: Path) -> None:
    size, _ = _newest_head(data_dir)
    other = bytes(31) + b"\x01"

    code, _, err = verify("--data-dir", str(data_dir), "--expect-head", f"{size}:{other.hex()}")

    assert code == 1
    assert "(kept_head_root)" in err
    assert f"the first {size} events" in err


@pytest.mark.parametrize("kept", ["12", "x:00", "0:" + "00" * 32, "5:abcd", "5:zz"])
def test_a_malformed_kept_head_is_a_usage_error(data_dir: Path, kept: str) -> None:
    with pytest.raises(BaylinkCliError, match=r"^--expect-head: a kept head"):
        verify("--data-dir", str(data_dir), "--expect-head", kept)
