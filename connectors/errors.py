"""Errors raised by connectors: each names what was wrong and, where known, where."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every baylink connector error."""


class PayloadError(ConnectorError):
    """A whole payload cannot be read as its format (the ``reason`` is a short machine code)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[PayloadError], tuple[str, str]]:
        # Exceptions pickle by their args; these two keep reason and message across processes.
        return (type(self), (self.reason, self.message))

    def __repr__(self) -> str:
        return f"PayloadError(reason={self.reason!r}, message={self.message!r})"


class SourceError(ConnectorError):
    """A path or URL cannot be read."""


class TransientSourceError(SourceError):
    """A source failed in a way worth retrying soon (5xx, 429, timeout, refused connection).

    ``retry_after`` is the wait in seconds the server asked for, when it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
