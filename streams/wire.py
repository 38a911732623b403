"""The wire format of ingest topics ``baylink.ingest.<dataset>.v<N>``.

One Kafka message carries one batch: the value is a msgpack array of records (maps of field
name to value; times as msgpack timestamps). Provenance and trace context travel in headers,
so a broker-side tool can route or inspect them without decoding the batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from domain.errors import ProvenanceError
from domain.provenance import Provenance
from domain.rejection import RejectionReason
from streams.errors import WireError

WIRE_SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

KIND_RECORDS = "records"
KIND_REJECTED_PAYLOAD = "rejected-payload"

H_KIND = "baylink-kind"
H_DATASET = "baylink-dataset"
H_PROVENANCE = "baylink-provenance"
H_WIRE_VERSION = "baylink-wire-version"
H_TRACEPARENT = "traceparent"

_encoder = msgspec.msgpack.Encoder()
_any_decoder = msgspec.msgpack.Decoder()
_rejection_decoder = msgspec.msgpack.Decoder(dict[str, Any])

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class WireBatch:
    """A decoded ingest message: what it carries and where it came from."""

    kind: str
    dataset_id: str
    provenance: Provenance
    rows: list[Any]
    traceparent: str | None = None
    payload_rejection: tuple[str, str] | None = None
    # The undecoded batch, when decode() was asked to leave the rows to the caller.
    payload: bytes = b""


def encode_rows(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return _encoder.encode(rows)


def encode_payload_rejection(reason: str, message: str, size: int) -> bytes:
    return _encoder.encode({"reason": reason, "message": message, "size": size})


def headers_for(
    kind: str, dataset_id: str, provenance: Provenance, traceparent: str | None
) -> Headers:
    headers: Headers = [
        (H_KIND, kind.encode()),
        (H_DATASET, dataset_id.encode()),
        (H_WIRE_VERSION, str(WIRE_SCHEMA_VERSION).encode()),
        (H_PROVENANCE, json.dumps(provenance.as_dict(), separators=(",", ":")).encode()),
    ]
    if traceparent:
        headers.append((H_TRACEPARENT, traceparent.encode()))
    return headers


def _header_map(
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    out: dict[str, str] = {}
    for key, value in items:
        try:
            out[key] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            raise WireError(RejectionReason.BAD_ENCODING, f"header {key!r} is not UTF-8") from None
    return out


def decode_provenance(
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> Provenance:
    """The provenance header alone, so a rejection can cite it even when the body is bad."""
    raw = _header_map(headers).get(H_PROVENANCE)
    if raw is None:
        raise WireError(RejectionReason.BAD_PROVENANCE, f"message has no {H_PROVENANCE} header")
    try:
        return Provenance.from_dict(json.loads(raw))
    except (ValueError, ProvenanceError) as error:
        raise WireError(RejectionReason.BAD_PROVENANCE, str(error)) from None


def decode(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
    expected_dataset: str,
    *,
    rows: bool = True,
) -> WireBatch:
    """Decode one message, raising WireError with the reason it cannot be accepted.

    With ``rows=False`` only the envelope is checked and the batch is returned undecoded in
    ``payload``, for a caller with a typed decoder of its own (see ``decode_rows``).
    """
    meta = _header_map(headers)
    version = meta.get(H_WIRE_VERSION)
    if version != str(WIRE_SCHEMA_VERSION):
        raise WireError(
            RejectionReason.UNSUPPORTED_WIRE_VERSION,
            f"wire schema version {version!r} is not supported (expected {WIRE_SCHEMA_VERSION})",
        )
    dataset_id = meta.get(H_DATASET, "")
    if dataset_id != expected_dataset:
        raise WireError(
            RejectionReason.UNKNOWN_DATASET,
            f"message names dataset {dataset_id!r} but arrived on the topic of "
            f"{expected_dataset!r}",
        )
    provenance = decode_provenance(headers)
    if value is None:
        raise WireError(RejectionReason.MALFORMED_BATCH, "message has no value")
    if len(value) > MAX_MESSAGE_BYTES:
        raise WireError(
            RejectionReason.OVERSIZED_MESSAGE,
            f"message is {len(value)} bytes, over the limit of {MAX_MESSAGE_BYTES}",
        )
    kind = meta.get(H_KIND, KIND_RECORDS)
    traceparent = meta.get(H_TRACEPARENT)
    if kind == KIND_REJECTED_PAYLOAD:
        try:
            info = _rejection_decoder.decode(value)
            rejection = (str(info["reason"]), str(info["message"]))
        except (msgspec.DecodeError, UnicodeDecodeError, KeyError):
            raise WireError(
                RejectionReason.MALFORMED_BATCH, "rejected-payload message is malformed"
            ) from None
        return WireBatch(kind, dataset_id, provenance, [], traceparent, rejection)
    if kind != KIND_RECORDS:
        raise WireError(RejectionReason.MALFORMED_BATCH, f"unknown message kind {kind!r}")
    if not rows:
        return WireBatch(kind, dataset_id, provenance, [], traceparent, payload=value)
    return WireBatch(kind, dataset_id, provenance, decode_rows(value), traceparent)


def decode_rows(value: bytes) -> list[Any]:
    """A records message's batch, as plain rows."""
    try:
        rows = _any_decoder.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise WireError(
            RejectionReason.BAD_ENCODING, f"batch is not valid msgpack: {error}"
        ) from None
    if not isinstance(rows, list):
        raise WireError(
            RejectionReason.MALFORMED_BATCH,
            f"batch must be an array of records, got a {type(rows).__name__}",
        )
    return rows
