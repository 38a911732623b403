"""Properties of the transports over random input: no crash but the connector's own errors,
no file version taken half-way or twice, Retry-After always a bounded wait."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.backoff import Backoff
from connectors.errors import ConnectorError, PayloadError, SourceError
from connectors.polling import (
    MAX_RETRY_AFTER_SECONDS,
    HttpCheckpoint,
    HttpPoller,
    PollResult,
    retry_after_seconds,
)
from connectors.watch import DirectoryWatch, FileCheckpoint

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=1000, deadline=None)
@given(value=st.none() | header_text | st.integers(0, 10**12).map(str))
def test_retry_after_is_none_or_a_wait_between_zero_and_an_hour(value: str | None) -> None:
    seconds = retry_after_seconds(value, NOW)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER_SECONDS


@settings(max_examples=1000, deadline=None)
@given(
    status=st.sampled_from([200, 200, 200, 204, 301, 304, 400, 404, 418, 429, 500, 502, 503]),
    body=st.binary(max_size=300),
    etag=st.none() | header_text,
    last_modified=st.none() | header_text,
    retry_after=st.none() | header_text,
    declared_length=st.none() | header_text | st.integers(0, 1000).map(str),
    previous=st.none()
    | st.builds(HttpCheckpoint, st.none() | header_text, st.none() | header_text),
)
def test_any_response_is_a_result_or_a_connector_error(
    status: int,
    body: bytes,
    etag: str | None,
    last_modified: str | None,
    retry_after: str | None,
    declared_length: str | None,
    previous: HttpCheckpoint | None,
) -> None:
    headers = {
        name: value
        for name, value in {
            "etag": etag,
            "last-modified": last_modified,
            "retry-after": retry_after,
        }.items()
        if value is not None
    }
    delays: list[float] = []

    def respond(_request: httpx.Request) -> httpx.Response:
        response = httpx.Response(status, headers=headers, content=body)
        if declared_length is not None:
            response.headers["content-length"] = declared_length
        return response

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    poller = HttpPoller(
        "https://feed.example.org/readings.csv",
        max_bytes=200,
        max_attempts=3,
        backoff=Backoff(random=lambda: 0.5),
        sleep=no_wait,
        clock=lambda: NOW,
        transport=httpx.MockTransport(respond),
    )

    async def outcome() -> PollResult | ConnectorError:
        try:
            return await poller.poll(previous)
        except ConnectorError as error:
            return error

    result = asyncio.run(outcome())
    assert all(0 <= delay <= MAX_RETRY_AFTER_SECONDS for delay in delays)
    if isinstance(result, PayloadError):
        assert result.reason == "too-large"
        assert "the limit is 200 bytes" in result.message
    elif isinstance(result, SourceError):
        assert "\n" not in str(result)
        assert status >= 400
        assert len(delays) == (2 if status >= 500 or status == 429 else 0)
    elif isinstance(result, ConnectorError):
        raise AssertionError(f"unexpected {result!r}")
    elif result.payload is not None:
        assert len(result.payload.data) <= 200
        assert result.checkpoint is not None
        assert result.checkpoint.sha256 == hashlib.sha256(result.payload.data).hexdigest()
    elif result.status == 304:
        assert result.checkpoint == previous


writes = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=20)),
        st.tuples(st.just("rewrite"), st.binary(max_size=20)),
        st.tuples(st.just("wait"), st.floats(min_value=0, max_value=3)),
        st.tuples(st.just("scan"), st.just(b"")),
    ),
    max_size=30,
)


@settings(max_examples=1000, deadline=None)
@given(steps=writes)
def test_a_watched_file_is_taken_only_as_it_is_and_each_settled_version_once(
    steps: list[tuple[str, object]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = directory / "readings.csv"
        now = [0.0]
        mtime = [1_700_000_000_000_000_000]
        watch = DirectoryWatch(
            directory, "*.csv", max_bytes=400, settle_seconds=1.0, clock=lambda: now[0]
        )
        taken: dict[str, FileCheckpoint] = {}
        payloads: list[bytes] = []

        def scan() -> None:
            for item in watch.scan(taken):
                current = path.read_bytes()
                assert item.error is None
                if item.payload is not None:
                    # Never a part of the file: exactly what it holds now.
                    assert item.payload.data == current
                    payloads.append(item.payload.data)
                taken[item.name] = item.checkpoint

        for action, argument in steps:
            if action in ("append", "rewrite"):
                assert isinstance(argument, bytes)
                with path.open("ab" if action == "append" else "wb") as stream:
                    stream.write(argument)
                mtime[0] += 1_000_000  # a distinct mtime per write, as a real clock gives
                os.utime(path, ns=(mtime[0], mtime[0]))
            elif action == "wait":
                assert isinstance(argument, float)
                now[0] += argument
            else:
                scan()
        if not path.exists():
            return
        # Left alone, the file's last version is taken: now, or already earlier.
        for _ in range(3):
            now[0] += 1.5
            scan()
        final = path.read_bytes()
        assert taken["readings.csv"].sha256 == hashlib.sha256(final).hexdigest()
        # Each version is published at most once in a row: no repeat of unchanged bytes.
        for before, after in itertools.pairwise(payloads):
            assert before != after
