"""Polling a feed over a real local socket: validators, 304, backoff, Retry-After, size limit."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.backoff import Backoff
from connectors.errors import PayloadError, SourceError, TransientSourceError
from connectors.polling import HttpCheckpoint, HttpPoller
from tests.support.feed_server import RunningFeed, ScriptedFailure, feed_server

pytestmark = pytest.mark.integration

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


class RecordedSleep:
    """Stands in for asyncio.sleep: remembers each delay, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def draws(*values: float) -> Iterator[float]:
    yield from values


@pytest.fixture
def feed() -> Iterator[RunningFeed]:
    with feed_server() as running:
        running.state.body = b"sensor_id,observed_at\ns1,2024-05-01T08:00:00Z\n"
        yield running


def poller(
    feed: RunningFeed,
    sleep: RecordedSleep,
    *values: float,
    cap: float = 60.0,
    max_bytes: int = 1024,
    max_attempts: int = 5,
) -> HttpPoller:
    randoms = draws(*values)
    return HttpPoller(
        feed.url,
        max_bytes=max_bytes,
        max_attempts=max_attempts,
        backoff=Backoff(base=1.0, cap=cap, random=lambda: next(randoms)),
        sleep=sleep,
        clock=lambda: NOW,
    )


async def test_a_second_poll_sends_the_validators_and_a_304_is_nothing_new(
    feed: RunningFeed,
) -> None:
    sleep = RecordedSleep()
    first = await poller(feed, sleep).poll(None)
    assert first.payload is not None
    assert first.payload.data == feed.state.body
    assert first.payload.uri == feed.url
    assert first.checkpoint == HttpCheckpoint(
        feed.state.etag, feed.state.last_modified, hashlib.sha256(feed.state.body).hexdigest()
    )

    second = await poller(feed, sleep).poll(first.checkpoint)

    assert (second.status, second.payload, second.checkpoint) == (304, None, first.checkpoint)
    sent = feed.state.requests[-1]
    assert sent["if-none-match"] == feed.state.etag
    assert sent["if-modified-since"] == feed.state.last_modified
    assert "if-none-match" not in feed.state.requests[0]
    assert sleep.delays == []


async def test_a_changed_feed_is_a_new_payload(feed: RunningFeed) -> None:
    first = await poller(feed, RecordedSleep()).poll(None)
    feed.state.body += b"s2,2024-05-01T08:01:00Z\n"

    second = await poller(feed, RecordedSleep()).poll(first.checkpoint)

    assert second.status == 200
    assert second.payload is not None
    assert second.payload.data.endswith(b"s2,2024-05-01T08:01:00Z\n")
    assert second.checkpoint is not None
    assert first.checkpoint is not None
    assert second.checkpoint.etag != first.checkpoint.etag


async def test_the_same_bytes_again_without_validators_are_nothing_new(feed: RunningFeed) -> None:
    feed.state.send_etag = False
    feed.state.last_modified = None
    first = await poller(feed, RecordedSleep()).poll(None)

    second = await poller(feed, RecordedSleep()).poll(first.checkpoint)

    assert second.status == 200
    assert second.payload is None
    assert second.checkpoint == first.checkpoint


async def test_server_errors_are_retried_after_jittered_doubling_delays(feed: RunningFeed) -> None:
    feed.state.failures = [ScriptedFailure(503), ScriptedFailure(502), ScriptedFailure(500)]
    sleep = RecordedSleep()

    result = await poller(feed, sleep, 0.5, 0.25, 0.75).poll(None)

    # Full jitter: draw * min(cap, base * 2**attempt) = 0.5*1, 0.25*2, 0.75*4.
    assert sleep.delays == [0.5, 0.5, 3.0]
    assert result.payload is not None
    assert result.attempts == 4
    assert feed.state.statuses == [503, 502, 500, 200]


async def test_backoff_delays_stop_growing_at_the_cap(feed: RunningFeed) -> None:
    feed.state.failures = [ScriptedFailure(503)] * 5
    sleep = RecordedSleep()

    await poller(feed, sleep, *[1.0] * 5, cap=3.0, max_attempts=6).poll(None)

    assert sleep.delays == [1.0, 2.0, 3.0, 3.0, 3.0]


async def test_retry_after_in_seconds_or_as_a_date_is_honoured(feed: RunningFeed) -> None:
    feed.state.failures = [
        ScriptedFailure(503, retry_after="7"),
        ScriptedFailure(429, retry_after="Wed, 01 May 2024 08:00:30 GMT"),
    ]
    sleep = RecordedSleep()

    result = await poller(feed, sleep, 0.1, 0.1).poll(None)

    assert sleep.delays == [7.0, 30.0]
    assert result.payload is not None


async def test_a_feed_failing_every_attempt_raises_a_transient_error(feed: RunningFeed) -> None:
    feed.state.failures = [ScriptedFailure(503)] * 10
    sleep = RecordedSleep()

    with pytest.raises(TransientSourceError, match=r"HTTP 503"):
        await poller(feed, sleep, 1.0, 1.0, 1.0, max_attempts=3).poll(None)

    assert sleep.delays == [1.0, 2.0]
    assert feed.state.statuses == [503, 503, 503]


async def test_a_client_error_is_not_retried(feed: RunningFeed) -> None:
    feed.state.failures = [ScriptedFailure(404)]
    sleep = RecordedSleep()

    with pytest.raises(SourceError, match=r"HTTP 404") as caught:
        await poller(feed, sleep).poll(None)

    assert not isinstance(caught.value, TransientSourceError)
    assert sleep.delays == []


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_payload_over_the_limit_is_refused(feed: RunningFeed, declare_length: bool) -> None:
    feed.state.body = b"x" * 5000
    feed.state.declare_length = declare_length

    with pytest.raises(PayloadError) as caught:
        await poller(feed, RecordedSleep(), max_bytes=4096).poll(None)

    assert caught.value.reason == "too-large"
    assert "the limit is 4096 bytes" in caught.value.message
    assert feed.url in caught.value.message


async def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = RecordedSleep()
    randoms = draws(0.5, 0.5)
    closed = HttpPoller(
        f"http://127.0.0.1:{port}/feed.csv",
        max_bytes=1024,
        max_attempts=3,
        backoff=Backoff(random=lambda: next(randoms)),
        sleep=sleep,
    )

    with pytest.raises(TransientSourceError, match=r"ConnectError"):
        await closed.poll(None)

    assert sleep.delays == [0.5, 1.0]


async def test_a_stopping_poller_makes_no_further_attempt_after_its_backoff(
    feed: RunningFeed,
) -> None:
    feed.state.failures = [ScriptedFailure(503)] * 5
    sleep = RecordedSleep()
    stopping = HttpPoller(
        feed.url,
        max_bytes=1024,
        max_attempts=5,
        backoff=Backoff(random=lambda: 0.5),
        sleep=sleep,
        stopping=lambda: len(sleep.delays) >= 1,
    )

    with pytest.raises(TransientSourceError):
        await stopping.poll(None)

    assert feed.state.statuses == [503]
    assert sleep.delays == [0.5]
