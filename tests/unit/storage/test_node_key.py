"""The node key is made once, kept private, and a file that is not an Ed25519 key is refused
with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from domain.tree_head import key_id_for
from storage.errors import NodeKeyError
from storage.node_key import ensure_node_key, load_node_key, load_public_key


def test_a_node_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node-key.pem"

    made = ensure_node_key(path)
    again = ensure_node_key(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert key_id_for(made.public_key()) == key_id_for(again.public_key())
    assert key_id_for(load_node_key(path).public_key()) == key_id_for(made.public_key())


def test_a_missing_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(NodeKeyError, match=r"cannot read the node key .*absent\.pem"):
        load_node_key(tmp_path / "absent.pem")


def test_a_file_that_is_not_a_pem_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "node-key.pem"
    path.write_text("not a key\n")

    with pytest.raises(NodeKeyError, match=r"node-key\.pem is not an unencrypted PEM key"):
        load_node_key(path)


def test_a_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node-key.pem"
    path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )

    with pytest.raises(NodeKeyError, match="is not an Ed25519 key"):
        load_node_key(path)


def test_an_auditor_reads_the_public_key_from_a_public_pem_or_the_node_key(
    tmp_path: Path,
) -> None:
    node = ensure_node_key(tmp_path / "node-key.pem")
    public = tmp_path / "node.pub.pem"
    public.write_bytes(
        node.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )

    assert key_id_for(load_public_key(public)) == key_id_for(node.public_key())
    assert key_id_for(load_public_key(tmp_path / "node-key.pem")) == key_id_for(node.public_key())


def test_a_public_key_that_is_not_ed25519_or_not_a_key_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    other = tmp_path / "ec.pub.pem"
    other.write_bytes(
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")

    with pytest.raises(NodeKeyError, match=r"ec\.pub\.pem is not an Ed25519 key"):
        load_public_key(other)
    with pytest.raises(NodeKeyError, match=r"garbage\.pem is not a PEM public key"):
        load_public_key(garbage)
    with pytest.raises(NodeKeyError, match=r"cannot read the public key .*absent\.pem"):
        load_public_key(tmp_path / "absent.pem")
