"""The compact, deterministic encoding of normalised records inside a stored batch.

msgpack through msgspec: the same records always give the same bytes, which the batch digest
and the hash chain rely on, and it is an order of magnitude faster than JSON.
"""

from __future__ import annotations

import hashlib

import msgspec

from domain.record import NormalisedRecord

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[list[object]])


def encode_records(records: list[NormalisedRecord]) -> bytes:
    return _encoder.encode(records)


def decode_records(payload: bytes) -> list[NormalisedRecord]:
    return _decoder.decode(payload)


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
