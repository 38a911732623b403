"""Polling an HTTP(S) feed: conditional requests, bounded size, retries with backoff.

Each poll sends the ETag and Last-Modified of the payload last taken (If-None-Match,
If-Modified-Since); 304 means nothing new. A 200 whose bytes hash the same as the last
payload's is also nothing new (many feeds send no validators). 5xx, 429, timeouts and
connection errors are retried after a jittered, capped exponential delay, or after the
server's Retry-After when it gives one; other 4xx fail the poll at once. A body larger than
``max_bytes`` is refused before it is all read.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from connectors.backoff import Backoff
from connectors.errors import PayloadError, SourceError, TransientSourceError
from connectors.source import FetchedPayload

# A server may ask for any Retry-After; past an hour the runner's own schedule decides.
MAX_RETRY_AFTER_SECONDS = 3600.0
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HttpCheckpoint:
    """What identifies the payload last taken from a feed."""

    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, value: dict[str, object] | None) -> HttpCheckpoint | None:
        if not value:
            return None

        def text(key: str) -> str | None:
            item = value.get(key)
            return item if isinstance(item, str) else None

        return cls(text("etag"), text("last_modified"), text("sha256"))


@dataclass(frozen=True, slots=True)
class PollResult:
    """A new payload and the checkpoint to save once it is published, or nothing new."""

    payload: FetchedPayload | None
    checkpoint: HttpCheckpoint | None
    status: int
    attempts: int = 1


def conditional_headers(previous: HttpCheckpoint | None) -> dict[str, str]:
    if previous is None:
        return {}
    headers = {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    return headers


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_SECONDS)


def _too_large(url: str, size: int | None, max_bytes: int) -> PayloadError:
    what = f"{size} bytes" if size is not None else "more bytes"
    return PayloadError("too-large", f"{url} sends {what}; the limit is {max_bytes} bytes")


@dataclass
class HttpPoller:
    """Polls one URL; ``sleep``, ``backoff.random`` and ``clock`` can be injected for tests."""

    url: str
    max_bytes: int
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    transport: httpx.AsyncBaseTransport | None = None
    # Checked after each backoff sleep: a stopping connector does not start another attempt.
    stopping: Callable[[], bool] = lambda: False
    delays: list[float] = field(default_factory=list)

    async def poll(self, previous: HttpCheckpoint | None) -> PollResult:
        """One poll, retrying transient failures up to ``max_attempts`` times in all.

        Raises the last TransientSourceError when every attempt failed, SourceError for other
        failures and PayloadError("too-large") for an oversize body.
        """
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=True, transport=self.transport
        ) as client:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    result = await self._request(client, previous)
                except TransientSourceError as error:
                    if attempt == self.max_attempts:
                        raise
                    delay = error.retry_after
                    jittered = self.backoff.next_delay()
                    delay = jittered if delay is None else delay
                    self.delays.append(delay)
                    await self.sleep(delay)
                    if self.stopping():
                        raise
                    continue
                self.backoff.reset()
                return PollResult(result.payload, result.checkpoint, result.status, attempt)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _request(
        self, client: httpx.AsyncClient, previous: HttpCheckpoint | None
    ) -> PollResult:
        url = self.url
        try:
            async with client.stream("GET", url, headers=conditional_headers(previous)) as response:
                if response.status_code == 304:
                    return PollResult(None, previous, 304)
                if response.status_code >= 500 or response.status_code == 429:
                    raise TransientSourceError(
                        f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                        retry_after_seconds(response.headers.get("retry-after"), self.clock()),
                    )
                if response.status_code >= 400:
                    raise SourceError(
                        f"cannot read {url}: HTTP {response.status_code} {response.reason_phrase}"
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise _too_large(url, int(declared), self.max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _too_large(url, None, self.max_bytes)
                    chunks.append(chunk)
                etag = response.headers.get("etag")
                last_modified = response.headers.get("last-modified")
                final_url = str(response.url)
                status = response.status_code
        except httpx.TransportError as error:
            raise TransientSourceError(f"{url}: {type(error).__name__}: {error}") from None
        except httpx.HTTPError as error:
            raise SourceError(f"cannot read {url}: {type(error).__name__}: {error}") from None
        data = b"".join(chunks)
        checkpoint = HttpCheckpoint(etag, last_modified, hashlib.sha256(data).hexdigest())
        if previous is not None and previous.sha256 == checkpoint.sha256:
            # Same bytes as last time: nothing to publish, but keep the newer validators.
            return PollResult(None, checkpoint, status)
        return PollResult(
            FetchedPayload(uri=final_url, data=data, received_at=self.clock()),
            checkpoint,
            status,
        )
