"""The compact, deterministic encoding of normalised records inside a stored batch.

msgpack through msgspec: the same records always give the same bytes, which the batch digest
and the hash chain rely on, and it is an order of magnitude faster than JSON.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import cast

import msgspec

from domain.record import NormalisedRecord

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[list[object]])
_counter = msgspec.msgpack.Decoder(list[msgspec.Raw])


def encode_records(records: list[NormalisedRecord]) -> bytes:
    return _encoder.encode(records)


def decode_records(payload: bytes) -> list[NormalisedRecord]:
    return _decoder.decode(payload)


def count_records(payload: bytes) -> int:
    """How many records a stored payload holds, without decoding them: the digest already
    vouches for their bytes."""
    return len(_counter.decode(payload))


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class EncodedRecords:
    """Accepted records as a batch stores them, with what is needed about them without
    decoding them again: their ids (for the record index) and counts per region.

    The ingest worker validates in other processes; passing records back as one payload
    instead of Python lists costs a fraction of rebuilding every value in the receiver.
    """

    payload: bytes
    ids: list[str]
    regions: dict[str, int]

    @classmethod
    def of(cls, records: list[NormalisedRecord]) -> EncodedRecords:
        return cls(
            encode_records(records),
            [cast(str, r[0]) for r in records],
            dict(Counter(cast(str, r[1]) for r in records)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def without(self, seen: set[str]) -> tuple[EncodedRecords, int]:
        """These records less those whose id is in ``seen`` (which gains the ones kept), and
        how many were left out; a record repeated within the batch counts as seen."""
        if not any(i in seen for i in self.ids) and len(set(self.ids)) == len(self.ids):
            seen.update(self.ids)
            return self, 0
        kept = []
        for record in decode_records(self.payload):
            record_id = cast(str, record[0])
            if record_id not in seen:
                seen.add(record_id)
                kept.append(record)
        return EncodedRecords.of(kept), len(self.ids) - len(kept)
