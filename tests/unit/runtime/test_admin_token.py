"""`baylink up`'s admin token: from the environment, or generated once into the data directory
where only its owner can read it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.auth import UnsafeSettingsError, check_admin_token
from api.settings import ApiSettings
from baylink.runtime.admin_token import ensure_admin_token, read_admin_token


@pytest.fixture(autouse=True)
def _no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAYLINK_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("BAYLINK_API_ADMIN_TOKEN", raising=False)


def test_a_token_is_generated_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    token, path = ensure_admin_token(tmp_path)
    again, same_path = ensure_admin_token(tmp_path)

    assert path == same_path == tmp_path / "admin-token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert again == token
    assert len(token) >= 40
    assert read_admin_token(tmp_path) == token
    check_admin_token(ApiSettings(admin_token=SecretStr(token)))  # safe outside development


def test_the_environment_wins_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAYLINK_ADMIN_TOKEN", "e" * 32)

    token, path = ensure_admin_token(tmp_path)

    assert (token, path) == ("e" * 32, None)
    assert not (tmp_path / "admin-token").exists()


def test_a_placeholder_passes_only_in_development() -> None:
    with pytest.raises(UnsafeSettingsError):
        check_admin_token(ApiSettings(admin_token=SecretStr("changeme")))
    check_admin_token(ApiSettings(admin_token=SecretStr("changeme"), environment="development"))


def test_up_refuses_a_placeholder_token_before_starting_anything(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYLINK_")}
    env["BAYLINK_ADMIN_TOKEN"] = "changeme"

    result = subprocess.run(
        [sys.executable, "-m", "baylink", "up", "--data-dir", str(tmp_path / "up")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "BAYLINK_ADMIN_TOKEN" in result.stderr
    assert not (tmp_path / "up" / "runtime.json").exists()
    assert not (tmp_path / "up" / "logs").exists()
