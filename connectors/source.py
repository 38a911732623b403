"""Fetch a payload's bytes from a local path or an http(s) URL, with the facts provenance needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from connectors.errors import PayloadError, SourceError

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 64 * MiB
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class FetchedPayload:
    """Bytes as received, where they came from and when they arrived (UTC)."""

    uri: str
    data: bytes
    received_at: datetime


def fetch(
    location: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> FetchedPayload:
    """Read ``location`` (a path, ``file://`` URI or http(s) URL), refusing more than max_bytes.

    ``transport`` lets tests and callers supply their own httpx transport.
    """
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(location, max_bytes, timeout, transport)
    if scheme == "file":
        return _fetch_file(Path(unquote(urlsplit(location).path)), max_bytes)
    # A one-letter scheme is a Windows drive ("C:\..."), not a URL.
    if scheme and len(scheme) > 1:
        raise SourceError(f"cannot read {location!r}: unsupported scheme {scheme!r}")
    return _fetch_file(Path(location), max_bytes)


def _too_large(where: str, size: int | None, max_bytes: int) -> PayloadError:
    what = f"{size} bytes" if size is not None else "more bytes"
    return PayloadError("too-large", f"{where} holds {what}; the limit is {max_bytes} bytes")


def _fetch_file(path: Path, max_bytes: int) -> FetchedPayload:
    path = path.expanduser().absolute()
    try:
        with path.open("rb") as stream:
            # Read one byte past the limit rather than trusting stat(): files can grow.
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise _too_large(str(path), None, max_bytes)
    return FetchedPayload(uri=path.as_uri(), data=data, received_at=datetime.now(UTC))


def _fetch_http(
    url: str, max_bytes: int, timeout: float, transport: httpx.BaseTransport | None
) -> FetchedPayload:
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, transport=transport) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise SourceError(
                    f"cannot read {url}: HTTP {response.status_code} {response.reason_phrase}"
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(url, int(declared), max_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(url, None, max_bytes)
                chunks.append(chunk)
            final_url = str(response.url)
    except httpx.HTTPError as error:
        raise SourceError(f"cannot read {url}: {type(error).__name__}: {error}") from None
    # The URI is where the bytes really came from, after any redirects.
    return FetchedPayload(uri=final_url, data=b"".join(chunks), received_at=datetime.now(UTC))
