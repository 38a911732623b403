"""`baylink audit head | prove | prove-consistency` read the platform's signed tree heads and
print proofs that verify against them; a size no head was signed for is one clear error."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate, event
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError
from domain.errors import MerkleProofError
from domain.log_leaf import LogLeaf
from domain.merkle import verify_consistency, verify_inclusion
from domain.tree_head import SignedTreeHead, TreeHead, verify_tree_head
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder

pytestmark = pytest.mark.integration

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audit cli node").digest())


class Reading(Aggregate):
    @event("Taken")
    def take(self, value: int) -> None:
        self.value = value


@pytest.fixture(params=["sqlite", "postgresql"])
def where(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[str]]]:
    """An event-store URL, and the options that lead `baylink audit` to it: the data dir
    (through BAYLINK_DATA_DIR) for SQLite, --event-store for PostgreSQL."""
    monkeypatch.delenv("BAYLINK_STORAGE_EVENT_STORE_URL", raising=False)
    if request.param == "sqlite":
        monkeypatch.setenv("BAYLINK_DATA_DIR", str(tmp_path))
        yield f"sqlite:///{tmp_path / 'events.sqlite'}", []
    else:
        url: str = request.getfixturevalue("postgres_url")
        yield url, ["--event-store", url]


def record_heads(url: str, events: int, every: int) -> None:
    ledger = TreeHeadLedger(url)
    try:
        reading = Reading()
        for value in range(events - 1):
            reading.take(value)
        ledger.save(reading)
        TreeHeadRecorder(ledger, NODE_KEY, every_events=every).run_once()
    finally:
        ledger.close()


def audit(*args: str) -> Any:
    result = CliRunner().invoke(app, ["audit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def verified(served: dict[str, Any]) -> TreeHead:
    head = TreeHead(
        served["tree_size"],
        bytes.fromhex(served["root"]),
        datetime.fromisoformat(served["timestamp"]),
        served["key_id"],
    )
    return verify_tree_head(
        SignedTreeHead(head, bytes.fromhex(served["signature"])), NODE_KEY.public_key()
    )


def test_printed_proofs_verify_against_the_signed_heads(where: tuple[str, list[str]]) -> None:
    url, options = where
    record_heads(url, 40, every=16)

    latest = verified(audit("head", *options))
    proof = audit("prove", "29", *options)
    older = audit("prove", "5", "--tree-size", "16", *options)
    consistency = audit("prove-consistency", "16", "32", *options)
    human = CliRunner().invoke(app, ["audit", "prove", "29", *options])

    assert latest.size == 32
    for served in (proof, older):
        head, leaf = verified(served["head"]), served["leaf"]
        leaf_hash = LogLeaf(
            leaf["position"],
            leaf["topic"],
            UUID(leaf["originator_id"]),
            leaf["originator_version"],
            bytes.fromhex(leaf["state_sha256"]),
        ).hash()
        path = tuple(bytes.fromhex(h) for h in served["audit_path"])
        verify_inclusion(leaf_hash, served["leaf_index"], head.size, path, head.root)
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaf_hash, served["leaf_index"], head.size, path[1:], head.root)
    first, second = verified(consistency["first"]), verified(consistency["second"])
    path = tuple(bytes.fromhex(h) for h in consistency["consistency_path"])
    verify_consistency(first.size, second.size, first.root, second.root, path)
    assert human.exit_code == 0
    assert "event at log position 29" in human.output


def test_a_size_no_head_was_signed_for_is_one_clear_error(where: tuple[str, list[str]]) -> None:
    url, options = where
    record_heads(url, 20, every=16)

    unsigned = CliRunner().invoke(app, ["audit", "prove", "3", "--tree-size", "17", *options])
    beyond = CliRunner().invoke(app, ["audit", "prove", "18", *options])

    assert isinstance(unsigned.exception, BaylinkCliError)  # main() prints it as one line
    assert str(unsigned.exception) == "no signed tree head of size 17 is recorded"
    assert isinstance(beyond.exception, BaylinkCliError)
    assert str(beyond.exception).startswith("log position 18 is not under the tree head")


def test_a_store_without_heads_says_how_they_come(where: tuple[str, list[str]]) -> None:
    _, options = where

    result = CliRunner().invoke(app, ["audit", "head", *options])

    assert isinstance(result.exception, BaylinkCliError)
    assert str(result.exception).startswith("no signed tree head is recorded yet")
