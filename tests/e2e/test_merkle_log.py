"""`baylink up` signs tree heads of its event log with a node key kept in its data directory,
and what the API and `baylink audit` serve verifies against that key alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from baylink.runtime.node_key import NODE_KEY_FILE
from baylink.runtime.ports import free_port
from domain.log_leaf import LogLeaf
from domain.merkle import verify_inclusion
from domain.tree_head import SignedTreeHead, TreeHead, verify_tree_head
from storage.node_key import load_node_key
from storage.snapshots import SnapshotLedger
from tests.support.embedded import admin_headers, baylink, clean_env, running_platform
from tests.support.platform import SENSOR_READINGS, reading_rows, wait_until, write_csv
from tests.support.tampering import StoreTamperer

pytestmark = pytest.mark.e2e


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    data_dir = tmp_path / "baylink"
    port = free_port()
    with running_platform(data_dir, port, BAYLINK_STORAGE_TREE_HEAD_EVERY_SECONDS="1"):
        yield data_dir, port


def has_head(data_dir: Path) -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "baylink", "audit", "head", "--json"],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


def verified(served: dict[str, Any], data_dir: Path) -> TreeHead:
    head = TreeHead(
        served["tree_size"],
        bytes.fromhex(served["root"]),
        datetime.fromisoformat(served["timestamp"]),
        served["key_id"],
    )
    public = load_node_key(data_dir / NODE_KEY_FILE).public_key()
    return verify_tree_head(SignedTreeHead(head, bytes.fromhex(served["signature"])), public)


def test_up_signs_tree_heads_whose_proofs_verify_with_the_node_key(
    running_up: tuple[Path, int],
) -> None:
    data_dir, port = running_up
    baylink(data_dir, "dataset", "register", str(SENSOR_READINGS))
    wait_until(lambda: has_head(data_dir), 60, what="a signed tree head")

    head = verified(json.loads(baylink(data_dir, "audit", "head", "--json").stdout), data_dir)
    printed = json.loads(baylink(data_dir, "audit", "prove", "1", "--json").stdout)
    served = (
        httpx.get(
            f"http://127.0.0.1:{port}/v1/audit/proofs/inclusion",
            params={"position": 1, "tree_size": printed["head"]["tree_size"]},
            headers=admin_headers(data_dir),
            timeout=30,
        )
        .raise_for_status()
        .json()
    )

    assert (data_dir / NODE_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert head.size >= 1
    assert served == printed
    leaf = served["leaf"]
    leaf_hash = LogLeaf(
        leaf["position"],
        leaf["topic"],
        UUID(leaf["originator_id"]),
        leaf["originator_version"],
        bytes.fromhex(leaf["state_sha256"]),
    ).hash()
    proof_head = verified(served["head"], data_dir)
    path = tuple(bytes.fromhex(h) for h in served["audit_path"])
    verify_inclusion(leaf_hash, served["leaf_index"], proof_head.size, path, proof_head.root)


def snapshots_published(data_dir: Path) -> int:
    ledger = SnapshotLedger(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        return len(ledger.publications("gba.traffic.sensor-readings"))
    finally:
        ledger.close()


def audit_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baylink", "audit", "verify", "--json"],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_stopped_platform_verifies_offline_until_its_store_is_tampered_with(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "baylink"
    with running_platform(
        data_dir,
        free_port(),
        BAYLINK_STORAGE_TREE_HEAD_EVERY_SECONDS="1",
        BAYLINK_STORAGE_SNAPSHOT_INTERVAL_SECONDS="1",
    ):
        baylink(data_dir, "dataset", "register", str(SENSOR_READINGS))
        readings = write_csv(tmp_path / "readings.csv", reading_rows(2_000, prefix="audited"))
        baylink(
            data_dir, "ingest", str(readings), "--dataset", "gba.traffic.sensor-readings", "--wait"
        )
        wait_until(lambda: snapshots_published(data_dir) >= 1, 60, what="a snapshot")
        wait_until(lambda: has_head(data_dir), 60, what="a signed tree head")
    verified_ok = audit_verify(data_dir)
    tamperer = StoreTamperer(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        batch = next(r for r in tamperer.rows() if r.topic.endswith("IngestChain.BatchRecorded"))
        tamperer.set_state(batch.position, batch.state[:-1] + bytes([batch.state[-1] ^ 1]))
    finally:
        tamperer.close()
    tampered = audit_verify(data_dir)

    assert verified_ok.returncode == 0, verified_ok.stderr
    report = json.loads(verified_ok.stdout)
    assert report["ok"] is True
    assert report["batches"] >= 1
    assert report["snapshots"] >= 1
    assert report["tree_heads"] >= 1
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["failure"]["position"] == batch.position
    assert tampered.stderr.startswith(f"baylink: verify failed at log position {batch.position}")
