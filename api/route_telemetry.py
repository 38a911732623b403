"""Route-level telemetry of the API: the server span is named after the route template and
every request is timed by route, method and status.

The FastAPI instrumentation derives the route from Starlette's routing, which misses the
/v1 prefix of included routers on current FastAPI; the templates here come from the app's
own OpenAPI paths, so they are the ones clients see.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from opentelemetry import metrics, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
request_duration = metrics.get_meter("baylink.api").create_histogram(
    "baylink.api.request.duration",
    unit="s",
    description="Time to answer an API request, by route template, method and status",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
UNMATCHED = "(unmatched)"
UNTIMED = ("/metrics", "/healthz", "/readyz")  # probes and scrapes, not API use


def route_matcher(paths: list[str]) -> Callable[[str], str]:
    """The template of the first of ``paths`` (OpenAPI form, ``{name}`` parameters) that a
    request path matches, or ``(unmatched)``."""
    patterns = [
        (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"), p)
        for p in sorted(paths, key=lambda p: (p.count("{"), -len(p)))
    ]

    def match(path: str) -> str:
        for pattern, template in patterns:
            if pattern.match(path):
                return template
        return UNMATCHED

    return match


class RouteTelemetry:
    """ASGI middleware inside the instrumentation's server span."""

    def __init__(self, app: ASGIApp, paths: Callable[[], list[str]]) -> None:
        self.app = app
        self._paths = paths
        self._match: Callable[[str], str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTIMED:
            await self.app(scope, receive, send)
            return
        status = 500
        route = self._route(scope["path"])

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Before the response goes out: the server span ends with its last byte.
                span = trace.get_current_span()
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            request_duration.record(
                time.perf_counter() - started,
                {
                    "http.route": route,
                    "http.request.method": scope["method"],
                    "http.response.status_code": status,
                },
            )

    def _route(self, path: str) -> str:
        if self._match is None:
            self._match = route_matcher(self._paths())
        return self._match(path)
