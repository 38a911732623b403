"""The secret that keys partners' pseudonyms and webhook signatures on a local platform.

The API and the delivery relay must share it, so that a partner's pseudonyms are the same by
query and by stream, and webhook signatures check against the secret the API showed."""

from __future__ import annotations

import os
from pathlib import Path

from baylink.runtime.secret_file import kept_secret

PSEUDONYM_SECRET_FILE = "pseudonym-secret"  # noqa: S105 (a file name, not a secret)
PSEUDONYM_SECRET_ENV = "BAYLINK_API_PSEUDONYM_SECRET"  # noqa: S105 (a variable's name)


def ensure_pseudonym_secret(data_dir: Path) -> str:
    """The secret the environment sets, else the one kept in ``data_dir`` (made once)."""
    configured = os.environ.get(PSEUDONYM_SECRET_ENV)
    if configured:
        return configured
    return kept_secret(data_dir / PSEUDONYM_SECRET_FILE)
