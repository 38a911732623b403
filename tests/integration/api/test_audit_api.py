"""GET /v1/audit/...: signed tree heads, and proofs that verify against them with the node's
public key alone; a tampered proof fails, a size nobody signed is refused, only the
administrator and the audit scope read them, and every reading is logged."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import MerkleProofError
from domain.log_leaf import LogLeaf
from domain.merkle import verify_consistency, verify_inclusion
from domain.tree_head import SignedTreeHead, TreeHead, verify_tree_head
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK_DEPT
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audit api node").digest())
EVERY = 7


@pytest.fixture
async def api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    ledger = TreeHeadLedger(fresh_governed.event_store_url)
    try:
        TreeHeadRecorder(ledger, NODE_KEY, every_events=EVERY).run_once()
    finally:
        ledger.close()
    async with client_of(fresh_governed.app) as client:
        yield client


def verified_head(served: dict[str, Any]) -> TreeHead:
    """The head as served, once its signature verifies under the node's public key."""
    head = TreeHead(
        served["tree_size"],
        bytes.fromhex(served["root"]),
        datetime.fromisoformat(served["timestamp"]),
        served["key_id"],
    )
    signed = SignedTreeHead(head, bytes.fromhex(served["signature"]))
    return verify_tree_head(signed, NODE_KEY.public_key())


def leaf_of(served: dict[str, Any]) -> bytes:
    leaf = served["leaf"]
    return LogLeaf(
        leaf["position"],
        leaf["topic"],
        UUID(leaf["originator_id"]),
        leaf["originator_version"],
        bytes.fromhex(leaf["state_sha256"]),
    ).hash()


def hashes(served: list[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h) for h in served)


async def get(api: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await api.get(f"/v1/audit/{path}", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_served_inclusion_proofs_verify_against_the_signed_head(
    api: httpx.AsyncClient,
) -> None:
    heads = (await get(api, "tree-heads"))["heads"]
    latest = await get(api, "tree-heads/latest")
    assert latest == heads[0]
    assert [h["tree_size"] for h in heads] == sorted((h["tree_size"] for h in heads), reverse=True)
    assert len(heads) >= 2
    assert all(h["tree_size"] % EVERY == 0 for h in heads)

    head = verified_head(latest)
    positions = random.Random(17).sample(range(1, latest["last_position"] + 1), 12)
    for position in [1, latest["last_position"], *positions]:
        proof = await get(api, "proofs/inclusion", position=position, tree_size=head.size)
        assert proof["head"] == latest
        assert proof["leaf"]["position"] == position
        assert proof["leaf_hash"] == leaf_of(proof).hex()
        verify_inclusion(
            leaf_of(proof), proof["leaf_index"], head.size, hashes(proof["audit_path"]), head.root
        )


async def test_a_tampered_served_proof_fails(api: httpx.AsyncClient) -> None:
    latest = await get(api, "tree-heads/latest")
    head = verified_head(latest)
    proof = await get(api, "proofs/inclusion", position=3, tree_size=head.size)
    path = list(proof["audit_path"])
    path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    topic_changed = {**proof, "leaf": {**proof["leaf"], "topic": proof["leaf"]["topic"] + "x"}}

    with pytest.raises(MerkleProofError):
        verify_inclusion(leaf_of(proof), proof["leaf_index"], head.size, hashes(path), head.root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(
            leaf_of(topic_changed),
            proof["leaf_index"],
            head.size,
            hashes(proof["audit_path"]),
            head.root,
        )


async def test_served_consistency_proofs_verify_between_signed_heads(
    api: httpx.AsyncClient,
) -> None:
    heads = (await get(api, "tree-heads"))["heads"]
    old, new = verified_head(heads[-1]), verified_head(heads[0])

    proof = await get(api, "proofs/consistency", first=old.size, second=new.size)

    assert (proof["first"], proof["second"]) == (heads[-1], heads[0])
    path = hashes(proof["consistency_path"])
    verify_consistency(old.size, new.size, old.root, new.root, path)
    with pytest.raises(MerkleProofError):
        verify_consistency(old.size, new.size, old.root, new.root, path[::-1])


async def test_a_size_no_head_was_signed_for_is_refused(api: httpx.AsyncClient) -> None:
    latest = await get(api, "tree-heads/latest")
    size = latest["tree_size"]

    unsigned = await api.get(
        "/v1/audit/proofs/inclusion", params={"position": 1, "tree_size": size - 1}, headers=ADMIN
    )
    beyond = await api.get(
        "/v1/audit/proofs/inclusion",
        params={"position": latest["last_position"] + 1, "tree_size": size},
        headers=ADMIN,
    )
    backwards = await api.get(
        "/v1/audit/proofs/consistency", params={"first": size, "second": EVERY}, headers=ADMIN
    )
    zero = await api.get(
        "/v1/audit/proofs/inclusion", params={"position": 0, "tree_size": size}, headers=ADMIN
    )

    assert (unsigned.status_code, unsigned.json()["detail"]) == (
        404,
        f"no signed tree head of size {size - 1} is recorded",
    )
    assert beyond.status_code == 404
    assert "is not under the tree head" in beyond.json()["detail"]
    assert backwards.status_code == 404
    assert zero.status_code == 422
    assert unsigned.headers["content-type"] == "application/problem+json"


async def test_only_the_administrator_and_auditors_read_the_merkle_log_and_each_read_is_logged(
    fresh_governed: ServedGoverned, api: httpx.AsyncClient
) -> None:
    auditor = await api.get(
        "/v1/audit/tree-heads", headers=bearer(fresh_governed.store.keys[GZ_BUREAU])
    )
    refused = await api.get(
        "/v1/audit/proofs/consistency",
        params={"first": EVERY, "second": EVERY},
        headers=bearer(fresh_governed.store.keys[HK_DEPT]),
    )
    await get(api, "proofs/inclusion", position=2, tree_size=EVERY)

    assert auditor.status_code == 200
    assert refused.status_code == 403
    accesses = (await api.get("/v1/access-log", params={"limit": 1000}, headers=ADMIN)).json()
    readings = [
        (e["partner_id"], e["action"], e["allowed"])
        for e in accesses["entries"]
        if e["action"].startswith("audit-")
    ]
    assert readings == [
        (GZ_BUREAU, "audit-tree-heads", True),
        (HK_DEPT, "audit-consistency-proof", False),
        (None, "audit-inclusion-proof", True),
    ]
