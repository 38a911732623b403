"""The audit commands read platform settings from the environment; these tests name every
store, key and limit themselves."""

from __future__ import annotations

import pytest

PLATFORM_SETTINGS = (
    "BAYLINK_DATA_DIR",
    "BAYLINK_STORAGE_EVENT_STORE_URL",
    "BAYLINK_STORAGE_OBJECT_STORE_URL",
    "BAYLINK_STORAGE_TREE_HEAD_KEY_FILE",
    "BAYLINK_STORAGE_TREE_HEAD_TSA_CA_FILE",
    "BAYLINK_AUDIT_BUNDLE_MAX_EVENTS",
)


@pytest.fixture(autouse=True)
def no_platform_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLATFORM_SETTINGS:
        monkeypatch.delenv(name, raising=False)
