"""`baylink up` makes the node key in its data directory once, or uses the one configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from baylink.errors import BaylinkCliError
from baylink.runtime.node_key import NODE_KEY_ENV, NODE_KEY_FILE, ensure_node_key_file
from domain.tree_head import key_id_for
from storage.node_key import ensure_node_key, load_node_key


def test_the_node_key_is_made_in_the_data_dir_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NODE_KEY_ENV, raising=False)

    first = ensure_node_key_file(tmp_path)
    key_id = key_id_for(load_node_key(first).public_key())
    again = ensure_node_key_file(tmp_path)

    assert first == again == (tmp_path / NODE_KEY_FILE).resolve()
    assert key_id_for(load_node_key(again).public_key()) == key_id


def test_a_configured_key_is_used_instead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "elsewhere" / "node.pem"
    key = ensure_node_key(configured)
    monkeypatch.setenv(NODE_KEY_ENV, str(configured))

    used = ensure_node_key_file(tmp_path / "data")

    assert used == configured.resolve()
    assert key_id_for(load_node_key(used).public_key()) == key_id_for(key.public_key())
    assert not (tmp_path / "data" / NODE_KEY_FILE).exists()


def test_a_configured_file_that_is_no_key_stops_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "node.pem"
    configured.write_text("garbage")
    monkeypatch.setenv(NODE_KEY_ENV, str(configured))

    with pytest.raises(BaylinkCliError, match="is not an unencrypted PEM key"):
        ensure_node_key_file(tmp_path)
