"""Signed tree heads: the log's word, under an Ed25519 node key, that its first N events hash to
a given Merkle root at a given time.

The signed bytes are a fixed text layout, one field per line after a format label, so that no two
heads share an encoding and any verifier can rebuild them without a serialisation library:

    baylink tree head v1
    <tree size, decimal>
    <root hash, 64 lowercase hex digits>
    <timestamp, microseconds since the Unix epoch, UTC>
    <key id, 64 lowercase hex digits>

The key id is the SHA-256 of the raw 32-byte public key, so a head names the key that must
verify it, and a head verified under any other key is refused before its signature is checked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.errors import TreeHeadError
from domain.merkle import HASH_SIZE

FORMAT_LABEL = b"baylink tree head v1"
SIGNATURE_SIZE = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def key_id_for(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


@dataclass(frozen=True, slots=True)
class TreeHead:
    """What a signed tree head asserts: the tree over the first ``size`` log events."""

    size: int
    root: bytes
    timestamp: datetime
    key_id: str

    def __post_init__(self) -> None:
        if type(self.size) is not int or self.size < 0:
            raise TreeHeadError(f"tree size must be a non-negative integer, not {self.size!r}")
        if type(self.root) is not bytes or len(self.root) != HASH_SIZE:
            raise TreeHeadError(f"root must be {HASH_SIZE} bytes, not {self.root!r:.80}")
        if self.timestamp.utcoffset() is None:
            raise TreeHeadError("timestamp must carry a time zone")
        if not isinstance(self.key_id, str) or not _HEX_DIGEST.fullmatch(self.key_id):
            raise TreeHeadError(f"key id must be 64 lowercase hex digits, not {self.key_id!r}")

    def canonical_bytes(self) -> bytes:
        micros = (self.timestamp - _EPOCH) // timedelta(microseconds=1)
        fields = (str(self.size), self.root.hex(), str(micros), self.key_id)
        return b"\n".join((FORMAT_LABEL, *(f.encode("ascii") for f in fields))) + b"\n"


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    head: TreeHead
    signature: bytes


def sign_tree_head(
    size: int, root: bytes, timestamp: datetime, private_key: Ed25519PrivateKey
) -> SignedTreeHead:
    head = TreeHead(size, root, timestamp, key_id_for(private_key.public_key()))
    return SignedTreeHead(head, private_key.sign(head.canonical_bytes()))


def verify_tree_head(signed: SignedTreeHead, public_key: Ed25519PublicKey) -> TreeHead:
    """The head, once its signature verifies under ``public_key``; else TreeHeadError."""
    if signed.head.key_id != key_id_for(public_key):
        raise TreeHeadError(f"tree head names key {signed.head.key_id}, not the key given")
    if type(signed.signature) is not bytes or len(signed.signature) != SIGNATURE_SIZE:
        raise TreeHeadError(f"a tree head signature is {SIGNATURE_SIZE} bytes")
    try:
        public_key.verify(signed.signature, signed.head.canonical_bytes())
    except InvalidSignature as error:
        raise TreeHeadError("tree head signature does not verify") from error
    return signed.head
