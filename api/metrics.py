"""``GET /metrics``: the process's OpenTelemetry metrics as Prometheus text, for scrapers and
``baylink status``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def metrics_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Empty unless the process exports metrics as Prometheus (OTEL_METRICS_EXPORTER)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
