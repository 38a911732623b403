"""Responses of the audit API: signed tree heads and the Merkle proofs served against them.

Hashes and signatures are lowercase hex; a verifier checks a head's signature (ADR 17's text
layout) under the node's Ed25519 key before it trusts the head's size and root."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import BaseModel, Field

from domain.log_leaf import LogLeaf
from domain.tree_head_log import TreeHeadLog
from storage.tree_heads import ConsistencyProof, InclusionProof

HEX_HASH = r"^[0-9a-f]{64}$"


class SignedTreeHeadModel(BaseModel):
    """A signed tree head: the first ``tree_size`` log events hash to ``root``."""

    tree_size: int = Field(ge=0)
    root: str = Field(pattern=HEX_HASH)
    timestamp: datetime = Field(description="When it was signed (microseconds are signed).")
    key_id: str = Field(pattern=HEX_HASH, description="SHA-256 of the raw Ed25519 public key.")
    signature: str = Field(description="Ed25519 signature over the head's text layout, hex.")
    last_position: int = Field(ge=0, description="Log position of the tree's last leaf.")
    timestamp_token: str | None = Field(
        None,
        description="The RFC 3161 TimeStampToken (DER, base64) a TSA issued over the head's "
        "text layout followed by its signature; null when no TSA stamped it.",
    )

    @classmethod
    def of(cls, head: TreeHeadLog.Recorded) -> SignedTreeHeadModel:
        token = head.timestamp_token
        return cls(
            tree_size=head.tree_size,
            root=head.root.hex(),
            timestamp=head.timestamp,
            key_id=head.key_id,
            signature=head.signature.hex(),
            last_position=head.last_position,
            timestamp_token=base64.b64encode(token).decode() if token else None,
        )


class TreeHeadList(BaseModel):
    heads: list[SignedTreeHeadModel] = Field(description="Newest first.")


class LogLeafModel(BaseModel):
    """What the tree commits to about one stored event (never its payload)."""

    position: int
    topic: str
    originator_id: str
    originator_version: int
    state_sha256: str = Field(pattern=HEX_HASH)

    @classmethod
    def of(cls, leaf: LogLeaf) -> LogLeafModel:
        return cls(
            position=leaf.position,
            topic=leaf.topic,
            originator_id=str(leaf.originator_id),
            originator_version=leaf.originator_version,
            state_sha256=leaf.state_sha256.hex(),
        )


class InclusionProofModel(BaseModel):
    """RFC 9162 §2.1.3 audit path of one event's leaf in the tree of a signed head."""

    head: SignedTreeHeadModel
    leaf: LogLeafModel
    leaf_index: int = Field(ge=0)
    leaf_hash: str = Field(pattern=HEX_HASH)
    audit_path: list[str]

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofModel:
        return cls(
            head=SignedTreeHeadModel.of(proof.head),
            leaf=LogLeafModel.of(proof.leaf),
            leaf_index=proof.index,
            leaf_hash=proof.leaf.hash().hex(),
            audit_path=[h.hex() for h in proof.path],
        )


class ConsistencyProofModel(BaseModel):
    """RFC 9162 §2.1.4 proof that the first head's tree is a prefix of the second's."""

    first: SignedTreeHeadModel
    second: SignedTreeHeadModel
    consistency_path: list[str]

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyProofModel:
        return cls(
            first=SignedTreeHeadModel.of(proof.first),
            second=SignedTreeHeadModel.of(proof.second),
            consistency_path=[h.hex() for h in proof.path],
        )
