"""Stored event state as msgpack: bytes stay bytes (no base64), times stay times."""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Transcoder


class MsgpackTranscoder(Transcoder):
    """Encodes event state with msgspec's msgpack; datetimes use the msgpack timestamp type."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data)
