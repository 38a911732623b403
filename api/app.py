"""The FastAPI application factory; nothing is built until `create_app` is called."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from api.health import ReadinessCheck, health_router
from api.settings import ApiSettings


def create_app(
    settings: ApiSettings | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """Build the baylink API from `settings` (read from the environment when omitted)."""
    settings = settings or ApiSettings()
    app = FastAPI(title="baylink", version=_package_version())
    app.state.settings = settings
    app.include_router(health_router(dict(readiness_checks or {})))
    return app


def _package_version() -> str:
    try:
        return version("baylink")
    except PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "0+unknown"
