"""The administrator's bearer token of a local platform: from the environment, or generated
once and kept in the data directory, readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from baylink.runtime.secret_file import kept_secret

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 (a file name, not a secret)
ADMIN_TOKEN_ENVS = ("BAYLINK_API_ADMIN_TOKEN", "BAYLINK_ADMIN_TOKEN")
API_ADMIN_TOKEN_ENV = ADMIN_TOKEN_ENVS[0]


def admin_token_path(data_dir: Path) -> Path:
    return data_dir / ADMIN_TOKEN_FILE


def configured_admin_token(environ: dict[str, str] | None = None) -> str | None:
    """The token set in the environment, if any."""
    environ = dict(os.environ) if environ is None else environ
    return next((environ[name] for name in ADMIN_TOKEN_ENVS if environ.get(name)), None)


def read_admin_token(data_dir: Path) -> str | None:
    """The token the environment sets, else the one kept in ``data_dir``, if any."""
    configured = configured_admin_token()
    if configured is not None:
        return configured
    path = admin_token_path(data_dir)
    return path.read_text().strip() if path.exists() else None


def ensure_admin_token(data_dir: Path) -> tuple[str, Path | None]:
    """The token and the file it is kept in (None when it comes from the environment); a new
    random token is written (mode 0600) when there is none yet."""
    configured = configured_admin_token()
    if configured is not None:
        return configured, None
    path = admin_token_path(data_dir)
    return kept_secret(path), path
