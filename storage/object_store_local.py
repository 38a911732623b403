"""The object store in a local directory: the embedded default.

An object is a plain file at ``<root>/<key>``, so pyarrow and DuckDB can read a snapshot
folder directly, and beside it a hidden sidecar ``.<name>.sha256`` records the SHA-256 and
size the file must have. Hidden names belong to the store, which is why no key segment may
start with '.'; pyarrow's dataset discovery skips them too.

Crash and concurrency safety rests on one invariant: **the sidecar always lists the digest of
the file currently in place**. A put writes the new bytes to a temporary file in the same
folder and fsyncs and re-hashes it, then, holding the store's write lock, (1) adds the new
digest to the sidecar, (2) renames the file into place, (3) rewrites the sidecar with the
new digest alone. Every step is an atomic rename, so a reader or a crash between any two
of them still finds the file's digest in the sidecar. A reader that sees a mismatch checks
whether the file was replaced while it read (then it reads again) before calling the object
corrupt. Writers serialise on an flock'd lock file; readers take no lock, unless the object
was replaced during each of several reads (writers replacing it back to back): then they read
once more holding it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import stat as stat_module
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from storage.errors import (
    CorruptObjectError,
    InvalidObjectKeyError,
    ObjectKeyConflictError,
    ObjectNotFoundError,
)
from storage.object_store import ObjectInfo

MAX_KEY_BYTES = 1024
"""S3's limit on a key, applied by every store so a key that works in one works in all."""
MAX_SEGMENT_BYTES = 200
"""Longest key segment: leaves room within a file system's 255-byte names for the sidecar."""
MAX_URL_SECONDS = 7 * 24 * 3600
"""Longest validity of a URL from url_for (S3's limit for presigned URLs)."""

_SIDECAR_SUFFIX = ".sha256"
_LOCK_NAME = ".baylink-object-store.lock"
_ATTEMPTS = 5
_CHUNK = 1024 * 1024


def check_key(key: str) -> str:
    """Return ``key`` if every object store can hold it, else raise InvalidObjectKeyError.

    A key is a relative '/'-separated path of non-empty segments, at most 1,024 bytes of
    UTF-8, without backslashes or control characters, and no segment starts with '.'.
    """
    problem = _key_problem(key)
    if problem is not None:
        raise InvalidObjectKeyError(f"object key {key!r} {problem}")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if some valid key could start with it, else raise
    InvalidObjectKeyError. Its last segment may be partial (``snapshots/road-sp``)."""
    if not isinstance(prefix, str):
        raise InvalidObjectKeyError(f"object key prefix {prefix!r} is not a string")
    if prefix:
        # The folders before the last '/' must be valid segments; the rest may be partial.
        folders = prefix.rpartition("/")[0]
        problem = _text_problem(prefix) or _key_problem(f"{folders}/x" if "/" in prefix else "x")
        if problem is not None:
            raise InvalidObjectKeyError(f"object key prefix {prefix!r} {problem}")
    return prefix


def _text_problem(text: str) -> str | None:
    if "\\" in text:
        return "contains a backslash; segments are separated by '/'"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return "contains a control character"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    if size > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes of UTF-8"
    return None


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return "is not a string"
    if not key:
        return "is empty"
    if key.startswith("/"):
        return "is absolute; keys are relative paths such as 'snapshots/<dataset>/manifest.json'"
    problem = _text_problem(key)
    if problem is not None:
        return problem
    for segment in key.split("/"):
        if not segment:
            return "has an empty segment ('//' or a trailing '/')"
        if segment in {".", ".."}:
            return f"has a {segment!r} segment"
        if segment.startswith("."):
            return f"has a segment {segment!r} starting with '.', a name stores keep for themselves"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"has a segment longer than {MAX_SEGMENT_BYTES} bytes of UTF-8"
    return None


def check_expiry(expires_seconds: int) -> int:
    """Return ``expires_seconds`` if a URL may live that long (1 s to 7 days), else ValueError."""
    if not 1 <= expires_seconds <= MAX_URL_SECONDS:
        raise ValueError(
            f"expires_seconds must be between 1 and {MAX_URL_SECONDS} (7 days), "
            f"not {expires_seconds}"
        )
    return expires_seconds


class LocalObjectStore:
    """Objects as files under ``root``, each verified against a SHA-256 sidecar."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock_path = self._root / _LOCK_NAME

    @property
    def root(self) -> Path:
        """The directory the objects live in."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically, verified by SHA-256; replaces any old
        object. ``content_type`` is not kept: a file has none."""
        path = self._path(key)
        digest = hashlib.sha256(data).hexdigest()
        temporary = self._write_verified(key, path, data, digest)
        try:
            with self._write_lock():
                if path.is_dir():
                    _remove_if_empty(key, path)
                recorded = [entry for entry in _read_sidecar(path) if entry[0] != digest]
                _write_sidecar(path, [*recorded, (digest, len(data))])
                os.replace(temporary, path)
                _fsync_folder(path.parent)
                _write_sidecar(path, [(digest, len(data))])
        finally:
            temporary.unlink(missing_ok=True)
        return ObjectInfo(key, len(data), digest)

    def get(self, key: str) -> bytes:
        """The object's bytes, checked against the SHA-256 recorded at put."""
        path = self._path(key)
        for _ in range(_ATTEMPTS):
            data = self._get_once(key, path)
            if data is not None:
                return data
        # Replaced during every read: read once more while no put can replace it.
        with self._write_lock():
            data = self._get_once(key, path)
        if data is None:
            raise CorruptObjectError(f"{key!r} in {self._root} changed under the write lock")
        return data

    def _get_once(self, key: str, path: Path) -> bytes | None:
        """The verified bytes; None when a put replaced the file while it was read."""
        try:
            file = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self._root}") from None
        with file:
            data = file.read()
            actual = hashlib.sha256(data).hexdigest()
            recorded = _read_sidecar(path)
            if any(digest == actual for digest, _ in recorded):
                return data
            if _replaced_since_opened(path, file.fileno()):
                return None
            raise _corrupt(key, recorded, actual)

    def stat(self, key: str) -> ObjectInfo:
        """Size and SHA-256 of a stored object; ObjectNotFoundError when absent.

        The size is the file's; the digest the one recorded for a file of that size (the
        bytes are hashed only while a put is half done). CorruptObjectError when no digest
        is recorded for the file.
        """
        path = self._path(key)
        for _ in range(_ATTEMPTS):
            info = self._stat_once(key, path)
            if info is not None:
                return info
        # Replaced during every look (writers replacing it back to back): look once more
        # while no put can replace it, rather than take the churn for corruption.
        with self._write_lock():
            info = self._stat_once(key, path)
        if info is None:
            raise CorruptObjectError(f"{key!r} in {self._root} changed under the write lock")
        return info

    def _stat_once(self, key: str, path: Path) -> ObjectInfo | None:
        """The object's size and digest; None when a put replaced it meanwhile."""
        try:
            before = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self._root}") from None
        if not _is_file(before):
            raise ObjectNotFoundError(f"no object {key!r} in {self._root}")
        recorded = _read_sidecar(path)
        if _replaced_since(path, before):
            return None
        candidates = {digest for digest, size in recorded if size == before.st_size}
        if len(candidates) == 1:
            return ObjectInfo(key, before.st_size, candidates.pop())
        actual = _hash_file(path) if candidates else None
        if actual is not None and actual in candidates:
            return ObjectInfo(key, before.st_size, actual)
        if _replaced_since(path, before):
            return None
        raise _corrupt(key, recorded, actual)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, in key order.

        Complete means the file and a record of its digest are both in place: files a
        crashed writer left, or files written around the store, are not listed.
        """
        check_prefix(prefix)
        folders = prefix.rpartition("/")[0]
        base = self._root.joinpath(*folders.split("/")) if folders else self._root
        keys: list[str] = []
        for folder, subfolders, files in os.walk(base):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            relative = Path(folder).relative_to(self._root).as_posix()
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if not name.startswith(".") and key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            if _key_problem(key) is not None:
                continue
            try:
                yield self.stat(key)
            except (ObjectNotFoundError, CorruptObjectError):
                continue

    def delete(self, key: str) -> None:
        """Remove an object; removing an absent key is not an error."""
        path = self._path(key)
        with self._write_lock():
            with suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()
            with suppress(FileNotFoundError, NotADirectoryError):
                _sidecar(path).unlink()
            folder = path.parent
            if folder.is_dir():
                _fsync_folder(folder)
            # Like S3, keep no empty folders behind: a later put may want the name.
            while folder != self._root:
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent

    def url_for(self, key: str, expires_seconds: int = 3600) -> str:
        """The object's ``file://`` URI (it does not expire; ``expires_seconds`` is checked
        only so a call that works here works against S3 too)."""
        check_expiry(expires_seconds)
        return self._path(key).as_uri()

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    def _write_verified(self, key: str, path: Path, data: bytes, digest: str) -> Path:
        """Write ``data`` to a new hidden file beside ``path``, fsync it, and check that
        reading it back gives ``digest``."""
        temporary = _temporary_beside(path)
        for attempt in range(_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                file = temporary.open("xb")
            except (FileExistsError, NotADirectoryError):
                raise ObjectKeyConflictError(
                    f"cannot store {key!r}: the local store holds an object where it needs a folder"
                ) from None
            except FileNotFoundError:
                # A delete removed the folder, empty, between mkdir and open: make it again.
                if attempt + 1 == _ATTEMPTS:
                    raise
                continue
            break
        try:
            with file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            written = _hash_file(temporary)
            if written != digest:
                raise CorruptObjectError(
                    f"object {key!r} read back from {temporary} has SHA-256 {written}, "
                    f"not {digest} as written"
                )
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _remove_if_empty(key: str, folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        raise ObjectKeyConflictError(
            f"cannot store {key!r}: the local store holds keys under '{key}/'"
        ) from None


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}{_SIDECAR_SUFFIX}")


def _temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def _read_sidecar(path: Path) -> list[tuple[str, int]]:
    """The (sha256, size) pairs recorded for ``path``; none when the record is absent or
    unreadable."""
    try:
        text = _sidecar(path).read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return []
    entries: list[tuple[str, int]] = []
    for line in text.splitlines():
        digest, _, size = line.partition(" ")
        if len(digest) != 64 or not size.isdigit() or digest.strip("0123456789abcdef"):
            return []
        entries.append((digest, int(size)))
    return entries


def _write_sidecar(path: Path, entries: list[tuple[str, int]]) -> None:
    sidecar = _sidecar(path)
    temporary = _temporary_beside(sidecar)
    try:
        with temporary.open("x", encoding="ascii") as file:
            file.writelines(f"{digest} {size}\n" for digest, size in entries)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, sidecar)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_file(status: os.stat_result) -> bool:
    return stat_module.S_ISREG(status.st_mode)


def _replaced_since(path: Path, before: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    return (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)


def _replaced_since_opened(path: Path, descriptor: int) -> bool:
    return _replaced_since(path, os.fstat(descriptor))


def _corrupt(key: str, recorded: list[tuple[str, int]], actual: str | None) -> CorruptObjectError:
    expected = " or ".join(digest for digest, _ in recorded) or "none recorded"
    found = f"; its bytes hash to {actual}" if actual is not None else ""
    return CorruptObjectError(
        f"object {key!r} does not match its recorded SHA-256 (expected {expected}{found})"
    )
