"""The leaf of the Merkle log for one stored event: what the tree commits to about it.

A leaf is (log position, event topic, originator id, originator version, SHA-256 of the stored
state), so the tree commits to every stored event without copying its payload, and anyone
holding the stored event can rebuild its leaf. The bytes are a fixed layout after a format
label, fixed-width fields first and the one variable-length field (the topic) last with its
length, so no two leaves share an encoding:

    b"baylink log leaf v1\\n"
    position            8 bytes, big-endian
    originator version  8 bytes, big-endian
    originator id       16 bytes (the UUID's bytes)
    state SHA-256       32 bytes
    topic length        4 bytes, big-endian, then the topic in UTF-8
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

from domain.errors import LogLeafError
from domain.merkle import HASH_SIZE, leaf_hash

FORMAT_LABEL = b"baylink log leaf v1\n"
_FIXED = struct.Struct(">QQ16s32sI")
_MAX_U64 = 2**64 - 1
_MAX_TOPIC = 2**16  # bytes; event topics are module paths and class names


@dataclass(frozen=True, slots=True)
class LogLeaf:
    """One stored event as the Merkle log sees it."""

    position: int
    topic: str
    originator_id: UUID
    originator_version: int
    state_sha256: bytes

    def __post_init__(self) -> None:
        if type(self.position) is not int or not 1 <= self.position <= _MAX_U64:
            raise LogLeafError(f"log position must be an integer from 1, not {self.position!r}")
        if type(self.originator_version) is not int or not 0 <= self.originator_version <= _MAX_U64:
            raise LogLeafError(
                "originator version must be a non-negative integer, "
                f"not {self.originator_version!r}"
            )
        if not isinstance(self.topic, str) or not self.topic:
            raise LogLeafError(f"event topic must be a non-empty string, not {self.topic!r:.80}")
        if len(self.topic.encode("utf-8", "surrogatepass")) > _MAX_TOPIC:
            raise LogLeafError(f"event topic is longer than {_MAX_TOPIC} bytes")
        if not isinstance(self.originator_id, UUID):
            raise LogLeafError(f"originator id must be a UUID, not {self.originator_id!r:.80}")
        if type(self.state_sha256) is not bytes or len(self.state_sha256) != HASH_SIZE:
            raise LogLeafError(
                f"state digest must be {HASH_SIZE} bytes of SHA-256, not {self.state_sha256!r:.80}"
            )

    @classmethod
    def of_stored_event(
        cls, position: int, topic: str, originator_id: UUID, originator_version: int, state: bytes
    ) -> LogLeaf:
        """The leaf of an event as stored: its state is digested here."""
        return cls(
            position, topic, originator_id, originator_version, hashlib.sha256(state).digest()
        )

    def canonical_bytes(self) -> bytes:
        try:
            topic = self.topic.encode("utf-8")
        except UnicodeEncodeError as error:
            raise LogLeafError(f"event topic is not valid Unicode text: {error}") from None
        fixed = _FIXED.pack(
            self.position,
            self.originator_version,
            self.originator_id.bytes,
            self.state_sha256,
            len(topic),
        )
        return FORMAT_LABEL + fixed + topic

    def hash(self) -> bytes:
        """The RFC 9162 leaf hash, SHA-256(0x00 || canonical bytes)."""
        return leaf_hash(self.canonical_bytes())


def stored_leaf_hash(
    position: int, topic: str, originator_id: UUID, originator_version: int, state: bytes
) -> bytes:
    """``LogLeaf.of_stored_event(...).hash()`` without building the leaf when its values are
    plainly well-formed, as a verifying pass over a whole log needs; anything else goes the
    checked way, so a malformed value raises the same ``LogLeafError``."""
    if (
        type(position) is int
        and 1 <= position <= _MAX_U64
        and type(originator_version) is int
        and 0 <= originator_version <= _MAX_U64
        and type(originator_id) is UUID
        and type(state) is bytes
        and type(topic) is str
    ):
        encoded = _topic_bytes(topic)
        if encoded is not None:
            fixed = _FIXED.pack(
                position,
                originator_version,
                originator_id.bytes,
                hashlib.sha256(state).digest(),
                len(encoded),
            )
            return leaf_hash(FORMAT_LABEL + fixed + encoded)
    return LogLeaf.of_stored_event(position, topic, originator_id, originator_version, state).hash()


@lru_cache(maxsize=256)  # a log has a few dozen event topics
def _topic_bytes(topic: str) -> bytes | None:
    """The topic's UTF-8, or None for a topic a leaf refuses."""
    try:
        encoded = topic.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return encoded if 0 < len(encoded) <= _MAX_TOPIC else None
