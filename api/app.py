"""The FastAPI application factory; nothing is built until `create_app` is called."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider

from api.errors import install_error_handlers
from api.health import ReadinessCheck, health_router
from api.metrics import metrics_router
from api.openapi import install_openapi
from api.route_telemetry import UNTIMED, RouteTelemetry
from api.routes import v1_router
from api.services import QueryServiceProvider
from api.settings import ApiSettings
from storage.settings import StorageSettings


def create_app(
    settings: ApiSettings | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """Build the baylink API from `settings` (read from the environment when omitted).

    Store URLs left unset in `settings` come from storage's settings
    (BAYLINK_STORAGE_EVENT_STORE_URL, BAYLINK_STORAGE_OBJECT_STORE_URL). The stores are opened
    on the first request that needs them and closed at shutdown.
    """
    settings = settings or ApiSettings()
    if settings.event_store_url is None or settings.object_store_url is None:
        storage = StorageSettings()
        settings = settings.model_copy(
            update={
                "event_store_url": settings.event_store_url or storage.event_store_url,
                "object_store_url": settings.object_store_url or storage.object_store_url,
            }
        )
    event_store_url, object_store_url = settings.event_store_url, settings.object_store_url
    assert event_store_url is not None
    assert object_store_url is not None
    provider = QueryServiceProvider(event_store_url, object_store_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            provider.close()

    app = FastAPI(title="baylink", version=_package_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.query_service = provider
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router(dict(readiness_checks or {})))
    app.include_router(metrics_router())
    app.include_router(v1_router())
    # Server spans through the global tracer provider, which the entry point or a test sets
    # up; request metrics come from RouteTelemetry, whose route templates are right.
    app.add_middleware(RouteTelemetry, paths=lambda: list(app.openapi()["paths"]))
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=",".join(UNTIMED), meter_provider=NoOpMeterProvider()
    )
    return app


def _package_version() -> str:
    try:
        return version("baylink")
    except PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "0+unknown"
