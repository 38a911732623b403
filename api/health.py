"""Liveness and readiness probes: /healthz says the process serves, /readyz that it can work."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

# A readiness check returns None when its dependency is usable, or says why it is not.
ReadinessCheck = Callable[[], str | None]


class HealthStatus(BaseModel):
    """Answer of /healthz."""

    status: str


class ReadinessStatus(BaseModel):
    """Answer of /readyz; `failing` names each check that is not satisfied and why."""

    status: str
    failing: dict[str, str] = {}


def health_router(checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """Build the probe routes; `checks` decide readiness (none means always ready)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> HealthStatus:
        return HealthStatus(status="ok")

    @router.get("/readyz")
    def readyz(response: Response) -> ReadinessStatus:
        failing = {name: reason for name, check in checks.items() if (reason := check())}
        if failing:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return ReadinessStatus(status="not ready", failing=failing)
        return ReadinessStatus(status="ready")

    return router
