"""Watching a directory for new or changed files that match a glob.

A file is taken only once it has settled: two scans at least ``settle_seconds`` apart saw the
same size and mtime, and a stat after reading it still agrees. A writer that is still
appending changes one of them, so a file is never read half-way however it is written.
Writers that can should write under a hidden or ``.part``/``.tmp`` name and rename the file
into place; such names are never taken.

Which version of each file was last taken is the caller's checkpoint (size, mtime, sha256):
a file whose size and mtime match it is not read again, and one touched without changing its
bytes is recognised by its sha256 and not published twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.errors import PayloadError, SourceError
from connectors.source import FetchedPayload

_TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """The version of a file last taken; ``refused`` names why it was not published."""

    size: int
    mtime_ns: int
    sha256: str | None
    refused: str | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
            "refused": self.refused,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, object]) -> FileCheckpoint | None:
        size, mtime_ns = value.get("size"), value.get("mtime_ns")
        sha256, refused = value.get("sha256"), value.get("refused")
        if not isinstance(size, int) or not isinstance(mtime_ns, int):
            return None
        return cls(
            size,
            mtime_ns,
            sha256 if isinstance(sha256, str) else None,
            refused if isinstance(refused, str) else None,
        )


@dataclass(frozen=True, slots=True)
class WatchedFile:
    """A settled file: its payload to publish, or the error that refused it, and its checkpoint.

    ``payload`` is None for a file touched without a change to its bytes, and for a refused one.
    """

    name: str
    checkpoint: FileCheckpoint
    payload: FetchedPayload | None
    error: PayloadError | SourceError | None = None


@dataclass
class _Sighting:
    size: int
    mtime_ns: int
    first_seen: float


def is_temporary(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") or base.lower().endswith(_TEMPORARY_SUFFIXES)


@dataclass
class DirectoryWatch:
    """Scans ``directory`` for files matching ``pattern`` (a glob relative to it)."""

    directory: Path
    pattern: str = "*"
    max_bytes: int = 64 * 1024 * 1024
    settle_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _sightings: dict[str, _Sighting] = field(default_factory=dict, repr=False)

    @property
    def pending(self) -> bool:
        """Whether files were seen that have not settled yet."""
        return bool(self._sightings)

    def scan(self, taken: Mapping[str, FileCheckpoint]) -> list[WatchedFile]:
        """Files that settled since they were last taken, oldest first.

        Raises SourceError when the directory itself cannot be read.
        """
        if not self.directory.is_dir():
            raise SourceError(f"cannot watch {self.directory}: not a directory")
        now = self.clock()
        ready: list[tuple[int, str, WatchedFile]] = []
        present: set[str] = set()
        try:
            candidates = sorted(self.directory.glob(self.pattern))
        except (OSError, ValueError) as error:
            raise SourceError(f"cannot watch {self.directory}/{self.pattern}: {error}") from None
        for path in candidates:
            name = path.relative_to(self.directory).as_posix()
            if is_temporary(name):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue  # removed or renamed between listing and stat; the next scan sees it
            if not path.is_file():
                continue
            present.add(name)
            previous = taken.get(name)
            if previous is not None and (previous.size, previous.mtime_ns) == (
                stat.st_size,
                stat.st_mtime_ns,
            ):
                self._sightings.pop(name, None)
                continue
            sighting = self._sightings.get(name)
            if sighting is None or (sighting.size, sighting.mtime_ns) != (
                stat.st_size,
                stat.st_mtime_ns,
            ):
                self._sightings[name] = _Sighting(stat.st_size, stat.st_mtime_ns, now)
                continue
            if now - sighting.first_seen < self.settle_seconds:
                continue
            item = self._take(path, name, sighting, previous)
            if item is not None:
                del self._sightings[name]
                ready.append((sighting.mtime_ns, name, item))
        for gone in set(self._sightings) - present:
            del self._sightings[gone]
        return [item for _, _, item in sorted(ready, key=lambda entry: entry[:2])]

    def _take(
        self, path: Path, name: str, sighting: _Sighting, previous: FileCheckpoint | None
    ) -> WatchedFile | None:
        if sighting.size > self.max_bytes:
            error = PayloadError(
                "too-large",
                f"{path} holds {sighting.size} bytes; the limit is {self.max_bytes} bytes",
            )
            checkpoint = FileCheckpoint(sighting.size, sighting.mtime_ns, None, error.reason)
            return WatchedFile(name, checkpoint, None, error)
        try:
            with path.open("rb") as stream:
                data = stream.read(self.max_bytes + 1)
            after = path.stat()
        except OSError:
            return None  # gone or unreadable for now; a later scan tries again
        if (after.st_size, after.st_mtime_ns) != (sighting.size, sighting.mtime_ns) or len(
            data
        ) != sighting.size:
            # Changed while being read: start settling again.
            self._sightings[name] = _Sighting(after.st_size, after.st_mtime_ns, self.clock())
            return None
        digest = hashlib.sha256(data).hexdigest()
        checkpoint = FileCheckpoint(sighting.size, sighting.mtime_ns, digest)
        if previous is not None and previous.sha256 == digest:
            return WatchedFile(name, checkpoint, None)
        payload = FetchedPayload(
            uri=path.absolute().as_uri(), data=data, received_at=datetime.now(UTC)
        )
        return WatchedFile(name, checkpoint, payload)
