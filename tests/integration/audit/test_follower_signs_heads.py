"""`baylink snapshots follow` (what `baylink up` supervises) signs tree heads with the node key
it is given while it snapshots, and stops cleanly on SIGTERM; a bad key is one clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate, event

from domain.merkle import root_hash
from domain.tree_head import key_id_for, verify_tree_head
from storage.node_key import ensure_node_key
from storage.tree_heads import TreeHeadLedger, log_leaf

pytestmark = pytest.mark.integration


class Reading(Aggregate):
    @event("Taken")
    def take(self, value: int) -> None:
        self.value = value


def follower(tmp_path: Path, key_file: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BAYLINK_STORAGE_TREE_HEAD_KEY_FILE": str(key_file),
        "BAYLINK_STORAGE_TREE_HEAD_EVERY_EVENTS": "5",
        "BAYLINK_STORAGE_TREE_HEAD_EVERY_SECONDS": "0.2",
        "BAYLINK_DATA_DIR": str(tmp_path),
    }
    env.pop("BAYLINK_STORAGE_EVENT_STORE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "baylink", "snapshots", "follow", "--interval", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_snapshot_follower_signs_heads_with_the_node_key(tmp_path: Path) -> None:
    key = ensure_node_key(tmp_path / "node-key.pem")
    ledger = TreeHeadLedger(f"sqlite:///{tmp_path / 'events.sqlite'}")
    process = follower(tmp_path, tmp_path / "node-key.pem")
    try:
        reading = Reading()
        for value in range(11):
            reading.take(value)
        ledger.save(reading)
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and max((h.tree_size for h in ledger.heads()), default=0) < 12
        ):
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        leaves = [log_leaf(n).hash() for n in ledger.notifications(0)]
        heads = ledger.heads()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        ledger.close()

    assert process.returncode == 0, stderr
    assert [h.tree_size for h in heads][:2] == [5, 10]
    assert max(h.tree_size for h in heads) >= 12
    for head in heads:
        assert head.key_id == key_id_for(key.public_key())
        assert verify_tree_head(head.signed_head(), key.public_key()).root == root_hash(
            leaves, head.tree_size
        )


def test_a_key_file_that_is_not_a_key_stops_the_follower_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "node-key.pem"
    bad.write_text("not a key\n")

    process = follower(tmp_path, bad)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode != 0
    assert "node-key.pem is not an unencrypted PEM key" in stderr
    assert "Traceback" not in stderr
