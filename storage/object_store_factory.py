"""From an object-store URL to a ready object store, or an error naming the URL.

- ``file:///absolute/dir`` or a plain path (``/srv/baylink/objects``, ``var/objects``): a
  LocalObjectStore in that directory, created if missing.
- ``s3://BUCKET``: an S3ObjectStore (nothing is contacted here; a missing bucket reads as
  empty and is created by the first put). The server is
  ``?endpoint=http://HOST:PORT`` or else ``BAYLINK_STORAGE_S3_ENDPOINT`` (there is no default:
  baylink never talks to a public cloud unless told to). ``?region=`` or
  ``BAYLINK_STORAGE_S3_REGION`` sets the region (default us-east-1). Credentials come from the
  arguments, else ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``; never from the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from storage.errors import ObjectStoreUrlError
from storage.object_store import ObjectStore
from storage.object_store_local import LocalObjectStore
from storage.object_store_s3 import S3ObjectStore

ENDPOINT_ENV = "BAYLINK_STORAGE_S3_ENDPOINT"
REGION_ENV = "BAYLINK_STORAGE_S3_REGION"
ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"  # noqa: S105  # a variable name, not a secret
DEFAULT_REGION = "us-east-1"

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_QUERY = frozenset({"endpoint", "region"})


def open_object_store(
    url: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> ObjectStore:
    """The object store ``url`` names; ObjectStoreUrlError naming the URL when it is not one
    baylink can open. A local directory is created; an S3 server is not contacted."""
    if not url.strip():
        raise ObjectStoreUrlError(f"object-store URL {url!r} is empty")
    parts = urlsplit(url)
    if parts.scheme == "":
        return LocalObjectStore(Path(url))
    if parts.scheme == "file":
        return LocalObjectStore(_local_path(url))
    if parts.scheme == "s3":
        return _s3_store(url, access_key, secret_key, os.environ)
    raise ObjectStoreUrlError(
        f"object-store URL {_redacted(url)!r} is neither file:///ABSOLUTE/DIR, a directory "
        "path, nor s3://BUCKET"
    )


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in {"", "localhost"}:
        raise ObjectStoreUrlError(
            f"object-store URL {url!r} names host {parts.netloc!r}; a file URL needs three "
            "slashes and an absolute path (file:///srv/baylink/objects), or give a plain path"
        )
    if parts.query or parts.fragment:
        raise ObjectStoreUrlError(f"object-store URL {url!r} may not have a query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise ObjectStoreUrlError(
            f"object-store URL {url!r} does not name an absolute directory "
            "(file:///srv/baylink/objects)"
        )
    return Path(path)


def _s3_store(
    url: str, access_key: str | None, secret_key: str | None, env: Mapping[str, str]
) -> S3ObjectStore:
    parts = urlsplit(url)
    shown = _redacted(url)
    if parts.username is not None or parts.password is not None:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} carries credentials; pass them as arguments or set "
            f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"
        )
    bucket = parts.netloc
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} does not name a valid bucket (3-63 lower-case letters, "
            "digits, '.' and '-'; s3://baylink-snapshots)"
        )
    if parts.path not in {"", "/"} or parts.fragment:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} names a path inside the bucket; give s3://BUCKET only"
        )
    query = _query(parts.query, shown)
    endpoint = query.get("endpoint") or env.get(ENDPOINT_ENV)
    if not endpoint:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} names no S3 server: add ?endpoint=https://HOST "
            f"or set {ENDPOINT_ENV}"
        )
    region = query.get("region") or env.get(REGION_ENV) or DEFAULT_REGION
    access_key = access_key or env.get(ACCESS_KEY_ENV)
    secret_key = secret_key or env.get(SECRET_KEY_ENV)
    if not access_key or not secret_key:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} needs credentials: pass access_key and secret_key "
            f"or set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"
        )
    try:
        return S3ObjectStore(endpoint, bucket, access_key, secret_key, region=region)
    except ValueError as error:
        raise ObjectStoreUrlError(f"object-store URL {shown!r}: {error}") from error


def _query(query: str, shown: str) -> dict[str, str]:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ObjectStoreUrlError(f"object-store URL {shown!r} has a malformed query") from None
    unknown = sorted(set(values) - _S3_QUERY)
    if unknown:
        raise ObjectStoreUrlError(
            f"object-store URL {shown!r} has unknown parameters {unknown}; "
            f"known are {sorted(_S3_QUERY)}"
        )
    repeated = sorted(name for name, given in values.items() if len(given) > 1)
    if repeated:
        raise ObjectStoreUrlError(f"object-store URL {shown!r} repeats {repeated}")
    return {name: given[0] for name, given in values.items()}


def _redacted(url: str) -> str:
    """``url`` without a password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
