"""Paging cursors sealed for partners: encrypted and authenticated, so a cursor says nothing.

A plain cursor carries the exact time of the last record of its page; a partner whose grant
coarsens that time must not read it there. Sealing every partner's cursor keeps them all
opaque, whatever the grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from storage.errors import BadCursorError


class CursorSeal:
    """Seals and opens cursors with a key derived from the server's secret."""

    def __init__(self, secret: bytes) -> None:
        key = hmac.new(secret, b"baylink-cursor-seal", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, cursor: str) -> str:
        return self._fernet.encrypt(cursor.encode()).decode().rstrip("=")

    def open(self, sealed: str) -> str:
        try:
            padded = sealed + "=" * (-len(sealed) % 4)
            return self._fernet.decrypt(padded.encode("ascii")).decode()
        except (InvalidToken, ValueError, UnicodeError):
            raise BadCursorError(
                "cursor is not one this API issued; pass next_cursor from the previous page"
            ) from None
