"""The object store port: where snapshots live. Small on purpose (pyiceberg's FileIO is the
model); a local directory is the embedded default and S3 (through minio) is production.

Every object is written with its SHA-256 and verified: a reader never gets a partial or
corrupt object, and a key is only listed once its content is complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored object: its key, size in bytes and SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    """Keys are '/'-separated relative paths such as ``snapshots/<dataset>/<id>/manifest.json``."""

    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically, verified by SHA-256; replaces any old object."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes, checked against the SHA-256 recorded at put.

        Raises ObjectNotFoundError, or CorruptObjectError when the bytes do not match.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size and SHA-256 of a stored object; ObjectNotFoundError when absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; removing an absent key is not an error."""
        ...

    def url_for(self, key: str, expires_seconds: int = 3600) -> str:
        """A URL a reader outside baylink can fetch the object from (presigned for S3,
        ``file://`` for a local directory)."""
        ...
