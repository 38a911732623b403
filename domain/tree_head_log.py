"""The log of signed tree heads: each head is an event in the same store as the events it
covers, so a head is itself under the tree from the next head on.

A recorded head carries, besides the signed head, where the tree stood when it was signed: the
log position of its last leaf and the tree's right frontier, so a recorder resumes from it
without rehashing the log.

From class version 2 a head may carry an RFC 3161 timestamp from a configured TSA over its
signed bytes (ADR 22): the TSA's DER TimeStampResp, empty when none was asked for or the TSA
failed. Heads stored before version 2 decode with an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent

from domain.merkle import MerkleFrontier
from domain.tree_head import SignedTreeHead, TreeHead

TREE_HEAD_LOG_ID: UUID = uuid5(NAMESPACE_URL, "urn:baylink:tree-head-log")


class TreeHeadLog:
    """Namespace of the events recorded on the log of tree heads."""

    @dataclass(frozen=True)
    class Recorded(DomainEvent):
        """A tree head over the first ``tree_size`` log events was signed (at the event's
        timestamp) under the node key ``key_id``."""

        tree_size: int
        root: bytes
        key_id: str
        signature: bytes
        last_position: int
        subtree_roots: list[bytes]
        timestamp_token: bytes = b""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["timestamp_token"] = b""

        def signed_head(self) -> SignedTreeHead:
            head = TreeHead(self.tree_size, self.root, self.timestamp, self.key_id)
            return SignedTreeHead(head, self.signature)

        def timestamped_bytes(self) -> bytes:
            """What a TSA timestamps: the signed head's bytes followed by its signature."""
            return self.signed_head().head.canonical_bytes() + self.signature

        def frontier(self) -> MerkleFrontier:
            return MerkleFrontier(self.tree_size, tuple(self.subtree_roots))
