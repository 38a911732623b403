"""The node's Ed25519 signing key: a PEM (PKCS#8) file, never stored in the event store."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from storage.errors import NodeKeyError


def load_node_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; NodeKeyError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NodeKeyError(f"cannot read the node key {path}: {error.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise NodeKeyError(f"the node key {path} is not an unencrypted PEM key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeKeyError(f"the node key {path} is not an Ed25519 key")
    return key


def ensure_node_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; a new one is generated there (mode 0600) when there is none."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
    return load_node_key(path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in ``path``: a public-key PEM (what an auditor is given), or the
    node key itself; NodeKeyError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NodeKeyError(f"cannot read the public key {path}: {error.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_node_key(path).public_key()
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise NodeKeyError(f"the public key {path} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise NodeKeyError(f"the public key {path} is not an Ed25519 key")
    return key
