"""A stored token is read by the verifier whatever its bytes: anything that is not a valid
token over the head is one TimestampError, never another exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from storage.head_timestamps import TimestampError, check_token, load_trust_anchors

_KEY = ec.generate_private_key(ec.SECP256R1())
_NAME = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "anchor")])
_ANCHOR = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(_KEY.public_key())
    .serial_number(1)
    .not_valid_before(datetime.now(UTC) - timedelta(days=1))
    .not_valid_after(datetime.now(UTC) + timedelta(days=1))
    .sign(_KEY, hashes.SHA256())
)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_never_a_token(token: bytes) -> None:
    with pytest.raises(TimestampError):
        check_token(token, b"head bytes", [_ANCHOR])


@given(st.binary(min_size=1, max_size=64))
def test_der_looking_bytes_are_never_a_token(body: bytes) -> None:
    token = b"\x30" + bytes([len(body)]) + body
    with pytest.raises(TimestampError):
        check_token(token, b"head bytes", [_ANCHOR])


def test_trust_anchors_that_cannot_be_read_are_one_error(tmp_path: Path) -> None:
    with pytest.raises(TimestampError, match="cannot read TSA certificates"):
        load_trust_anchors(tmp_path / "missing.pem")
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    with pytest.raises(TimestampError, match="holds no PEM certificate"):
        load_trust_anchors(tmp_path / "empty.pem")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(_ANCHOR.public_bytes(serialization.Encoding.PEM) * 2)
    assert load_trust_anchors(bundle) == [_ANCHOR, _ANCHOR]
