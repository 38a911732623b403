"""The node key that signs the Merkle log's tree heads on a local platform.

Kept as a PEM file in the data directory (made once, mode 0600), never in the event store;
the snapshot follower, which records the heads, is the only process given its path."""

from __future__ import annotations

import os
from pathlib import Path

from baylink.errors import BaylinkCliError
from storage.errors import NodeKeyError
from storage.node_key import ensure_node_key

NODE_KEY_FILE = "node-key.pem"
NODE_KEY_ENV = "BAYLINK_STORAGE_TREE_HEAD_KEY_FILE"


def ensure_node_key_file(data_dir: Path) -> Path:
    """The key file the environment names, else the one kept in ``data_dir`` (made once)."""
    path = Path(os.environ.get(NODE_KEY_ENV) or data_dir / NODE_KEY_FILE)
    try:
        ensure_node_key(path)
    except NodeKeyError as error:
        raise BaylinkCliError(str(error)) from None
    return path.resolve()
