"""A platform stopped after two rounds of ingest: its history replayed to the end of the first
round verifies offline in the sandbox, and every snapshot the platform's own follower
published rebuilds from the events to the published bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from baylink.runtime.node_key import NODE_KEY_FILE
from baylink.runtime.ports import free_port
from storage.node_key import load_node_key
from storage.snapshot_rebuild import publications
from storage.snapshots import SnapshotLedger
from tests.support.embedded import baylink, running_platform
from tests.support.platform import SENSOR_READINGS, reading_rows, wait_until, write_csv

pytestmark = pytest.mark.e2e

DATASET = "gba.traffic.sensor-readings"


def published(data_dir: Path) -> int:
    ledger = SnapshotLedger(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        return len(ledger.publications(DATASET))
    finally:
        ledger.close()


def test_a_stopped_platform_replays_and_rebuilds_its_snapshots_bit_for_bit(
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
        for round_ in range(2):
            readings = write_csv(
                tmp_path / f"readings-{round_}.csv", reading_rows(1_000, prefix=f"round{round_}")
            )
            baylink(data_dir, "ingest", str(readings), "--dataset", DATASET, "--wait")
            wait_until(lambda n=round_: published(data_dir) > n, 60, what="a snapshot")
    ledger = SnapshotLedger(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        snapshots = list(publications(ledger))
    finally:
        ledger.close()
    public = tmp_path / "node.pub.pem"
    public.write_bytes(
        load_node_key(data_dir / NODE_KEY_FILE)
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    sandbox = tmp_path / "sandbox"
    until = snapshots[0].position

    replayed = baylink(data_dir, "audit", "replay", "--until", str(until), "--into", str(sandbox))
    verified = baylink(
        data_dir, "audit", "verify", "--data-dir", str(sandbox), "--public-key", str(public)
    )
    from_sandbox = baylink(
        data_dir,
        "audit",
        "rebuild-snapshot",
        snapshots[0].event.snapshot_id,
        "--data-dir",
        str(sandbox),
        "--json",
    )
    rebuilt = [
        json.loads(
            baylink(data_dir, "audit", "rebuild-snapshot", s.event.snapshot_id, "--json").stdout
        )
        for s in snapshots
    ]

    assert len(snapshots) >= 2
    assert replayed.stdout.startswith(f"replayed {until} events up to log position {until} ")
    assert verified.stdout.startswith(f"verified {until} events up to log position {until}: ")
    assert json.loads(from_sandbox.stdout)["manifest_sha256"] == (
        snapshots[0].event.manifest_sha256
    )
    assert [(r["ok"], r["manifest_sha256"]) for r in rebuilt] == [
        (True, s.event.manifest_sha256) for s in snapshots
    ]
