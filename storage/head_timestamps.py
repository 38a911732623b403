"""RFC 3161 timestamps of signed tree heads (ADR 22): asking a configured TSA for a token over
a head's signed bytes, and checking a stored token against the head and a trust anchor.

A token is kept as the TSA's DER TimeStampResp (status and TimeStampToken), which is what the
verifying library reads; the ASN.1 and CMS work is rfc3161-client's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from storage.errors import StorageError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
# A TSA's clock and the node's may disagree a little; a token dated earlier than that is
# older than the head it claims to cover.
ALLOWED_SKEW = timedelta(seconds=5)


class TimestampError(StorageError):
    """A timestamp could not be had, or a token does not hold."""


def load_trust_anchors(path: Path) -> list[x509.Certificate]:
    """The PEM certificates (a CA bundle or the TSA's own certificate) tokens must chain to."""
    try:
        anchors = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as error:
        raise TimestampError(f"cannot read TSA certificates {path}: {error.strerror}") from None
    except ValueError:
        raise TimestampError(f"{path} holds no PEM certificate") from None
    return anchors


class TimestampAuthority:
    """An RFC 3161 TSA reached over HTTP; ``trust_anchors``, when given, are checked at once."""

    def __init__(
        self,
        url: str,
        trust_anchors: Sequence[x509.Certificate] = (),
        timeout_seconds: float = 10.0,
    ) -> None:
        if not _is_http_url(url):
            raise TimestampError(f"the TSA URL must be http:// or https://, not {url!r}")
        self.url = url
        self._anchors = list(trust_anchors)
        self._timeout = timeout_seconds

    def stamp(self, data: bytes) -> bytes:
        """The TSA's DER response granting a token over SHA-256 of ``data``; TimestampError if
        the TSA cannot be reached or answers anything but a token for this request."""
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            reply = httpx.post(
                self.url,
                content=request.as_bytes(),
                headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise TimestampError(f"TSA {self.url} unreachable: {error}") from None
        if reply.status_code != httpx.codes.OK:
            raise TimestampError(f"TSA {self.url} answered HTTP {reply.status_code}")
        response = _decoded(reply.content)
        # Granted only: a token granted "with modifications" is refused by the verifier too.
        if response.status != PKIStatus.GRANTED:
            said = " ".join(response.status_string)
            raise TimestampError(f"TSA {self.url} refused (status {response.status}): {said}")
        info = response.tst_info
        if info.message_imprint.message != hashlib.sha256(data).digest():
            raise TimestampError(f"TSA {self.url} timestamped other bytes than those sent")
        if info.nonce != request.nonce:
            raise TimestampError(f"TSA {self.url} answered another request (nonce differs)")
        if self._anchors:
            check_token(response.as_bytes(), data, self._anchors)
        return response.as_bytes()


def _is_http_url(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _decoded(token: bytes) -> TimeStampResponse:
    try:
        return decode_timestamp_response(token)
    except Exception as error:  # the Rust decoder raises ValueError or its own kinds
        raise TimestampError(f"not an RFC 3161 timestamp response: {error}") from None


def check_token(
    token: bytes,
    data: bytes,
    trust_anchors: Sequence[x509.Certificate],
    not_before: datetime | None = None,
) -> datetime:
    """The token's genTime once it is a granted RFC 3161 token over SHA-256 of ``data``, signed
    by a timestamping certificate chaining to one of ``trust_anchors`` and, with
    ``not_before``, dated no earlier than it less the allowed skew; else TimestampError."""
    response = _decoded(token)
    if response.tst_info.message_imprint.hash_algorithm != x509.ObjectIdentifier(
        "2.16.840.1.101.3.4.2.1"
    ):
        raise TimestampError("the token is not over a SHA-256 digest")
    builder = VerifierBuilder()
    for anchor in trust_anchors:
        builder = builder.add_root_certificate(anchor)
    try:
        builder.build().verify(response, hashlib.sha256(data).digest())
    except VerificationError as error:
        said = str(error)
        if "verifying certificates" in said:
            said = "its signature does not verify under a certificate chaining to the trusted ones"
        raise TimestampError(f"the token does not verify: {said}") from None
    except Exception as error:  # malformed CMS inside a decodable response
        raise TimestampError(f"the token does not verify: {type(error).__name__}") from None
    gen_time = response.tst_info.gen_time
    if not_before is not None and gen_time < not_before - ALLOWED_SKEW:
        raise TimestampError(
            f"the TSA dated the token {gen_time.isoformat()}, before the head's own timestamp"
        )
    return gen_time
