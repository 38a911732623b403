"""A minimal Kafka Metadata request, to learn whether a broker answers, using only the stdlib."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_METADATA_API_KEY = 3
_METADATA_VERSION = 1
_CLIENT_ID = b"baylink-probe"
_CORRELATION_ID = 0x0BA1


@dataclass(frozen=True)
class BrokerAddress:
    """One broker as the cluster advertises it in its metadata."""

    node_id: int
    host: str
    port: int


class KafkaProbeError(Exception):
    """The peer did not answer a Kafka Metadata request sensibly."""


def fetch_brokers(host: str, port: int, timeout: float = 2.0) -> list[BrokerAddress]:
    """Send one Metadata request to `host:port` and return the brokers it advertises."""
    # Version 1 is old enough for every broker and the first where an empty topic array
    # means "no topics" (null would mean all), which keeps the answer small.
    body = (
        struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, _CORRELATION_ID, len(_CLIENT_ID))
        + _CLIENT_ID
        + struct.pack(">i", 0)
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _read_exactly(sock, 4))[0]
            response = _read_exactly(sock, size)
    except OSError as error:
        raise KafkaProbeError(f"{host}:{port}: {error}") from error
    return _parse_brokers(response)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise KafkaProbeError("connection closed before the whole answer arrived")
        chunks.extend(chunk)
    return bytes(chunks)


def _parse_brokers(response: bytes) -> list[BrokerAddress]:
    try:
        correlation_id, count = struct.unpack_from(">ii", response, 0)
        if correlation_id != _CORRELATION_ID:
            raise KafkaProbeError(f"answer to another request ({correlation_id})")
        offset = 8
        brokers = []
        for _ in range(count):
            node_id, host_length = struct.unpack_from(">ih", response, offset)
            offset += 6
            host = response[offset : offset + host_length].decode()
            offset += host_length
            (port, rack_length) = struct.unpack_from(">ih", response, offset)
            offset += 6 + max(rack_length, 0)
            brokers.append(BrokerAddress(node_id, host, port))
    except (struct.error, UnicodeDecodeError) as error:
        raise KafkaProbeError(f"malformed Metadata answer: {error}") from error
    return brokers
