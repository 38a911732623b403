"""Asking a real RFC 3161 TSA (`openssl ts` on loopback) for tokens: a granted token for the
bytes sent is returned, and anything else the TSA answers is one TimestampError; a token's
genTime may not fall before the head's own time by more than the allowed skew."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from storage.head_timestamps import (
    ALLOWED_SKEW,
    TimestampAuthority,
    TimestampError,
    check_token,
    load_trust_anchors,
)
from tests.support.tsa import LocalTsa, local_tsa

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with local_tsa() as running:
        yield running


@pytest.fixture(scope="module")
def anchors(tsa: LocalTsa) -> list[x509.Certificate]:
    return load_trust_anchors(tsa.ca_file)


def test_a_granted_token_checks_against_the_ca_the_tsa_certificate_chains_to(
    tsa: LocalTsa, anchors: list[x509.Certificate], tmp_path: Path
) -> None:
    token = TimestampAuthority(tsa.url, anchors).stamp(b"head bytes")
    gen_time = check_token(token, b"head bytes", anchors)
    assert abs(gen_time.timestamp() - time.time()) < 60
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tsa.tsa_cert_file.read_bytes() + tsa.ca_file.read_bytes())
    assert check_token(token, b"head bytes", load_trust_anchors(bundle)) == gen_time
    # The TSA's certificate alone is no anchor: the chain must end at a CA given.
    with pytest.raises(TimestampError, match="does not verify"):
        check_token(token, b"head bytes", load_trust_anchors(tsa.tsa_cert_file))
    with pytest.raises(TimestampError, match="Mismatch between messages"):
        check_token(token, b"other bytes", anchors)


def test_a_token_dated_before_the_head_is_refused_beyond_the_skew(
    tsa: LocalTsa, anchors: list[x509.Certificate]
) -> None:
    token = TimestampAuthority(tsa.url).stamp(b"head bytes")
    gen_time = check_token(token, b"head bytes", anchors)
    assert check_token(token, b"head bytes", anchors, gen_time + ALLOWED_SKEW) == gen_time
    later = gen_time + ALLOWED_SKEW + timedelta(seconds=1)
    with pytest.raises(TimestampError, match="before the head's own timestamp"):
        check_token(token, b"head bytes", anchors, later)


def test_a_reply_to_another_request_is_refused(
    tsa: LocalTsa, anchors: list[x509.Certificate]
) -> None:
    authority = TimestampAuthority(tsa.url, anchors)
    earlier = authority.stamp(b"head bytes")
    tsa.answer_with(earlier)
    try:
        with pytest.raises(TimestampError, match="nonce differs"):
            authority.stamp(b"head bytes")
        with pytest.raises(TimestampError, match="other bytes than those sent"):
            authority.stamp(b"the next head")
        tsa.answer_with(tsa.rejection())
        with pytest.raises(TimestampError, match=r"refused \(status 2\)"):
            authority.stamp(b"head bytes")
        tsa.answer_with(b"\x30\x03\x02\x01\x00")
        with pytest.raises(TimestampError, match="not an RFC 3161 timestamp response"):
            authority.stamp(b"head bytes")
    finally:
        tsa.answer_with(None)


def test_a_tsa_not_trusted_by_the_recorder_is_refused_at_once(tsa: LocalTsa) -> None:
    with local_tsa("other") as other:
        trusting_other = TimestampAuthority(tsa.url, load_trust_anchors(other.ca_file))
        with pytest.raises(TimestampError, match="does not verify"):
            trusting_other.stamp(b"head bytes")


def test_only_an_http_url_names_a_tsa() -> None:
    for url in ("ftp://tsa.example/", "tsa.example", "http://[::1", ""):
        with pytest.raises(TimestampError, match="must be http"):
            TimestampAuthority(url)


def test_an_unreachable_or_failing_tsa_is_one_error(tsa: LocalTsa) -> None:
    with pytest.raises(TimestampError, match="unreachable"):
        TimestampAuthority("http://127.0.0.1:9/tsa", timeout_seconds=2).stamp(b"head bytes")
    tsa.break_answers()
    try:
        with pytest.raises(TimestampError, match="HTTP 500"):
            TimestampAuthority(tsa.url).stamp(b"head bytes")
    finally:
        tsa.break_answers(False)


def test_a_timestamp_request_costs_milliseconds(tsa: LocalTsa) -> None:
    authority = TimestampAuthority(tsa.url)
    started = time.perf_counter()
    for index in range(10):
        authority.stamp(f"head {index}".encode())
    # openssl runs once per request here; a remote TSA adds its round trip.
    assert (time.perf_counter() - started) / 10 < 1.0
