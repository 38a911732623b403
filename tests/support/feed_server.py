"""A small HTTP feed on a real local socket, scripted by tests: validators, failures, sizes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ScriptedFailure:
    """A response served instead of the feed for one request."""

    status: int
    retry_after: str | None = None


@dataclass
class FeedState:
    """What the feed serves now; tests change it between polls."""

    body: bytes = b""
    last_modified: str | None = "Wed, 01 May 2024 08:00:00 GMT"
    send_etag: bool = True
    declare_length: bool = True
    failures: list[ScriptedFailure] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    server: _FeedHTTPServer

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append({k.lower(): v for k, v in self.headers.items()})
            failure = state.failures.pop(0) if state.failures else None
            body, etag = state.body, state.etag
            send_etag, last_modified = state.send_etag, state.last_modified
            declare_length = state.declare_length
        if failure is not None:
            self._record(failure.status)
            self.send_response(failure.status)
            if failure.retry_after is not None:
                self.send_header("Retry-After", failure.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if send_etag and self.headers.get("If-None-Match") == etag:
            self._record(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        if send_etag:
            self.send_header("ETag", etag)
        if last_modified:
            self.send_header("Last-Modified", last_modified)
        if declare_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _record(self, status: int) -> None:
        with self.server.state.lock:
            self.server.state.statuses.append(status)

    def log_message(self, format: str, *args: object) -> None:
        return


class _FeedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FeedState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass(frozen=True)
class RunningFeed:
    url: str
    state: FeedState


@contextmanager
def feed_server(path: str = "/readings.csv") -> Iterator[RunningFeed]:
    """Serve a feed at http://127.0.0.1:<free port><path> until the block ends."""
    state = FeedState()
    server = _FeedHTTPServer(state)
    thread = threading.Thread(target=server.serve_forever, name="feed-server", daemon=True)
    thread.start()
    try:
        yield RunningFeed(f"http://127.0.0.1:{server.server_address[1]}{path}", state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
