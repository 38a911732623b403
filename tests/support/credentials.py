"""The administrator's token the test APIs are started with, and its request header."""

from __future__ import annotations

ADMIN_TOKEN = "test-admin-token-" + "0123456789abcdef" * 2
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
