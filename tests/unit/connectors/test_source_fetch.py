"""Fetching payload bytes from local files and http(s) URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.errors import PayloadError, SourceError
from connectors.source import fetch


def _serve(handler: object) -> httpx.MockTransport:
    assert callable(handler)
    return httpx.MockTransport(handler)


def test_fetch_reads_a_local_file_and_names_it_by_absolute_file_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feed.pb").write_bytes(b"\x0a\x00")
    monkeypatch.chdir(tmp_path)

    fetched = fetch("feed.pb")

    assert fetched.data == b"\x0a\x00"
    assert fetched.uri == (tmp_path / "feed.pb").absolute().as_uri()
    assert fetched.received_at.utcoffset() is not None


def test_fetch_accepts_a_file_uri(tmp_path: Path) -> None:
    path = tmp_path / "speed map.csv"
    path.write_bytes(b"link_id\n")

    assert fetch(path.as_uri()).data == b"link_id\n"


@pytest.mark.parametrize("name", ["missing.csv", "."])
def test_fetch_of_an_unreadable_path_raises_source_error_naming_it(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(SourceError) as caught:
        fetch(str(tmp_path / name))

    assert str(caught.value).startswith(f"cannot read {tmp_path}")
    assert "\n" not in str(caught.value)


def test_fetch_refuses_a_file_larger_than_max_bytes(tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_bytes(b"x" * 11)

    with pytest.raises(PayloadError) as caught:
        fetch(str(tmp_path / "big.csv"), max_bytes=10)

    assert caught.value.reason == "too-large"
    assert fetch(str(tmp_path / "big.csv"), max_bytes=11).data == b"x" * 11


def test_fetch_refuses_an_unsupported_scheme() -> None:
    with pytest.raises(SourceError, match="unsupported scheme 'ftp'"):
        fetch("ftp://example.org/feed.pb")


def test_fetch_follows_redirects_and_names_the_final_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/latest":
            return httpx.Response(302, headers={"location": "/feeds/2024-05-01.pb"})
        return httpx.Response(200, content=b"\x0a\x00")

    fetched = fetch("https://data.example.hk/latest", transport=_serve(handler))

    assert fetched.data == b"\x0a\x00"
    assert fetched.uri == "https://data.example.hk/feeds/2024-05-01.pb"


def test_fetch_of_an_http_error_status_raises_source_error() -> None:
    transport = _serve(lambda request: httpx.Response(404))

    with pytest.raises(SourceError) as caught:
        fetch("https://data.example.hk/feed.pb", transport=transport)

    assert str(caught.value) == "cannot read https://data.example.hk/feed.pb: HTTP 404 Not Found"


def test_fetch_refuses_a_response_declared_too_large() -> None:
    transport = _serve(lambda request: httpx.Response(200, content=b"x" * 11))

    with pytest.raises(PayloadError) as caught:
        fetch("https://data.example.hk/feed.pb", max_bytes=10, transport=transport)

    assert caught.value.reason == "too-large"
    assert "11 bytes" in str(caught.value)


def test_fetch_stops_reading_a_stream_that_grows_past_max_bytes() -> None:
    def chunks() -> Iterator[bytes]:
        yield from (b"x" * 4 for _ in range(100))

    transport = _serve(lambda request: httpx.Response(200, content=chunks()))

    with pytest.raises(PayloadError) as caught:
        fetch("https://data.example.hk/feed.pb", max_bytes=10, transport=transport)

    assert caught.value.reason == "too-large"


def test_fetch_turns_a_connection_failure_into_one_line_source_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SourceError) as caught:
        fetch("https://data.example.hk/feed.pb", transport=_serve(refuse))

    assert str(caught.value) == (
        "cannot read https://data.example.hk/feed.pb: ConnectError: connection refused"
    )
