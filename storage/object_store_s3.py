"""The object store in an S3 bucket (MinIO, SeaweedFS, AWS), through the ``minio`` client.

This is the only module that imports minio. Every object carries its SHA-256 twice:
as user metadata (``x-amz-meta-sha256``, hex), which get() checks the downloaded bytes
against, and, for objects up to 5 GiB (sent in one PUT), as the ``x-amz-checksum-sha256``
header, which the server checks before it stores anything (SeaweedFS 4.48 answers
BadDigest to a wrong one, as AWS does). On plain http the request signature also covers
the payload's SHA-256; on https minio adds Content-MD5. After the upload the object is
stat'ed and its size and recorded digest compared with what was sent.

An S3 PUT is atomic, so a listed object is always whole; objects without a recorded digest
(written around this store) are not listed, and get()/stat() call them corrupt.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import NoReturn
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.helpers import MAX_PART_SIZE, MIN_PART_SIZE, DictType, ObjectWriteResult

from storage.errors import CorruptObjectError, ObjectNotFoundError, ObjectStoreError
from storage.object_store import ObjectInfo
from storage.object_store_local import check_expiry, check_key, check_prefix

SHA256_METADATA = "sha256"
"""User-metadata name of the object's hex SHA-256; on the wire ``x-amz-meta-sha256``."""
_SHA256_HEADER = "x-amz-meta-sha256"
_CHECKSUM_HEADER = "x-amz-checksum-sha256"
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket"})


class S3ObjectStore:
    """Objects in one bucket of an S3 server, each verified against its SHA-256.

    ``endpoint`` is ``http://host:port``, ``https://host`` or ``host:port`` (then ``secure``
    chooses https). Nothing is sent until the first call. A missing bucket reads as an
    empty one, and the first put creates it (or call ensure_bucket()).
    """

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        secure: bool = False,
    ) -> None:
        netloc, secure = _netloc_and_security(endpoint, secure)
        self._bucket = bucket
        self._endpoint_url = f"{'https' if secure else 'http'}://{netloc}"
        self._region = region
        self._credentials = (access_key, secret_key)
        self._client = Minio(
            netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
        )

    @property
    def bucket(self) -> str:
        """The bucket the objects live in."""
        return self._bucket

    @property
    def endpoint_url(self) -> str:
        """The server, as ``http(s)://host:port`` (for pyarrow's S3FileSystem, say)."""
        return self._endpoint_url

    @property
    def region(self) -> str:
        """The region requests are signed for."""
        return self._region

    def credentials(self) -> tuple[str | None, str | None]:
        """Access key and secret key, for other clients of the same bucket."""
        return self._credentials

    def __repr__(self) -> str:
        return f"S3ObjectStore({self._endpoint_url!r}, bucket={self._bucket!r})"

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""
        with self._translated("create bucket"):
            if not self._client.bucket_exists(self._bucket):
                try:
                    self._client.make_bucket(self._bucket)
                except S3Error as error:
                    # Another process created it first.
                    if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise

    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically, verified by SHA-256; replaces any old
        object."""
        check_key(key)
        digest = hashlib.sha256(data)
        headers: DictType = {SHA256_METADATA: digest.hexdigest()}
        sent_checksum = None
        if len(data) <= MAX_PART_SIZE:
            # One PUT, so the server can check the whole body against the checksum header
            # (minio passes x-amz-* metadata through as headers).
            sent_checksum = base64.b64encode(digest.digest()).decode("ascii")
            headers[_CHECKSUM_HEADER] = sent_checksum
            part_size = max(len(data), MIN_PART_SIZE)
        else:
            part_size = 0  # multipart; the digest is still checked by every get()
        with self._translated("put", key):
            try:
                written = self._upload(key, data, content_type, headers, part_size)
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
                self.ensure_bucket()
                written = self._upload(key, data, content_type, headers, part_size)
            stored = self._client.stat_object(
                self._bucket, key, extra_headers={"x-amz-checksum-mode": "ENABLED"}
            )
        info = ObjectInfo(key, len(data), digest.hexdigest())
        if stored.etag != written.etag:
            return info  # a later put replaced it already; that writer checks its own
        recorded = stored.metadata.get(_SHA256_HEADER) if stored.metadata else None
        checksum = stored.metadata.get(_CHECKSUM_HEADER) if stored.metadata else None
        checksum_differs = None not in (checksum, sent_checksum) and checksum != sent_checksum
        if stored.size != len(data) or recorded != info.sha256 or checksum_differs:
            raise CorruptObjectError(
                f"object {key!r} in bucket {self._bucket!r} was stored as {stored.size} bytes "
                f"with SHA-256 {recorded} (checksum {checksum}), "
                f"not {len(data)} bytes with SHA-256 {info.sha256}"
            )
        return info

    def _upload(
        self, key: str, data: bytes, content_type: str, headers: DictType, part_size: int
    ) -> ObjectWriteResult:
        return self._client.put_object(
            self._bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            metadata=headers,
            part_size=part_size,
        )

    def get(self, key: str) -> bytes:
        """The object's bytes, checked against the SHA-256 recorded at put."""
        check_key(key)
        with self._translated("get", key):
            response = self._client.get_object(self._bucket, key)
            try:
                data = response.read()
                recorded = response.headers.get(_SHA256_HEADER)
            finally:
                response.close()
                response.release_conn()
        actual = hashlib.sha256(data).hexdigest()
        if recorded != actual:
            raise CorruptObjectError(
                f"object {key!r} in bucket {self._bucket!r} does not match its recorded "
                f"SHA-256 (expected {recorded or 'none recorded'}; its bytes hash to {actual})"
            )
        return data

    def stat(self, key: str) -> ObjectInfo:
        """Size and SHA-256 of a stored object; ObjectNotFoundError when absent, and
        CorruptObjectError when it has no recorded SHA-256."""
        check_key(key)
        with self._translated("stat", key):
            stored = self._client.stat_object(self._bucket, key)
        recorded = stored.metadata.get(_SHA256_HEADER) if stored.metadata else None
        if not _is_sha256(recorded):
            raise CorruptObjectError(
                f"object {key!r} in bucket {self._bucket!r} has no recorded SHA-256 "
                f"(metadata {_SHA256_HEADER}: {recorded!r})"
            )
        assert recorded is not None  # for mypy: _is_sha256 said so
        return ObjectInfo(key, int(stored.size or 0), recorded)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, in key order.

        The keys are sorted here: S3 promises UTF-8 binary order, but servers built on a
        file tree (SeaweedFS) list folder by folder, 'a/b' before 'a-c'. One HEAD per
        object then reads its recorded digest.
        """
        check_prefix(prefix)
        keys: list[str] = []
        with self._translated("list", prefix):
            try:
                for entry in self._client.list_objects(self._bucket, prefix=prefix, recursive=True):
                    key = entry.object_name
                    if not entry.is_dir and key is not None and _valid_key_or_none(key):
                        keys.append(key)
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
        for key in sorted(keys):
            try:
                info = self.stat(key)
            except (ObjectNotFoundError, CorruptObjectError):
                continue  # deleted since listed, or not written through a store
            yield info

    def delete(self, key: str) -> None:
        """Remove an object; removing an absent key is not an error."""
        check_key(key)
        with suppress(ObjectNotFoundError), self._translated("delete", key):
            self._client.remove_object(self._bucket, key)

    def url_for(self, key: str, expires_seconds: int = 3600) -> str:
        """A presigned GET URL, valid for ``expires_seconds`` (1 s to 7 days)."""
        check_key(key)
        check_expiry(expires_seconds)
        with self._translated("presign", key):
            url: str = self._client.presigned_get_object(
                self._bucket, key, expires=timedelta(seconds=expires_seconds)
            )
        return url

    @contextmanager
    def _translated(self, operation: str, key: str | None = None) -> Iterator[None]:
        """Turn minio's and urllib3's errors into the object store's."""
        try:
            yield
        except S3Error as error:
            if key is not None and error.code in _NOT_FOUND:
                raise ObjectNotFoundError(f"no object {key!r} in bucket {self._bucket!r}") from None
            _fail(operation, self._bucket, key, f"{error.code}: {error.message}", error)
        except urllib3.exceptions.HTTPError as error:
            _fail(operation, self._bucket, key, f"{type(error).__name__}: {error}", error)


def _valid_key_or_none(key: str) -> str | None:
    """``key`` if it is valid, else None (keys written around the store are skipped)."""
    try:
        return check_key(key)
    except ValueError:
        return None


def _fail(operation: str, bucket: str, key: str | None, reason: str, error: Exception) -> NoReturn:
    target = f"{key!r} in bucket {bucket!r}" if key is not None else f"bucket {bucket!r}"
    raise ObjectStoreError(f"S3 {operation} of {target} failed: {reason}") from error


def _is_sha256(value: str | None) -> bool:
    return value is not None and len(value) == 64 and not value.strip("0123456789abcdef")


def _netloc_and_security(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` and whether to use https, from ``endpoint`` with or without scheme."""
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"S3 endpoint {endpoint!r} is not http://HOST[:PORT] or https://...")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise ValueError(f"S3 endpoint {endpoint!r} must be a scheme, host and port only")
    if secure and parts.scheme == "http":
        raise ValueError(f"S3 endpoint {endpoint!r} is plain http, but secure=True was asked")
    return parts.netloc, parts.scheme == "https"
