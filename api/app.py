"""The FastAPI application factory; nothing is built until `create_app` is called."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider

from api.auth import Authenticator, check_admin_token
from api.errors import install_error_handlers
from api.health import ReadinessCheck, health_router
from api.limits import BodySizeLimit, RateLimiter
from api.metrics import metrics_router
from api.openapi import install_openapi
from api.route_telemetry import UNTIMED, RouteTelemetry
from api.routes import v1_router
from api.sealed_cursor import CursorSeal
from api.services import LedgerProvider, QueryServiceProvider
from api.settings import ApiSettings
from api.subscription_services import SubscriptionServices
from storage.access_log import AccessLog
from storage.governance import Governance
from storage.settings import StorageSettings
from storage.tree_heads import TreeHeadLedger

_log = logging.getLogger("baylink.api")


def create_app(
    settings: ApiSettings | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """Build the baylink API from `settings` (read from the environment when omitted).

    Store URLs left unset in `settings` come from storage's settings
    (BAYLINK_STORAGE_EVENT_STORE_URL, BAYLINK_STORAGE_OBJECT_STORE_URL). The stores are opened
    on the first request that needs them and closed at shutdown. Raises UnsafeSettingsError
    for a placeholder admin token outside development.
    """
    settings = settings or ApiSettings()
    check_admin_token(settings)
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
    governance = LedgerProvider(event_store_url, Governance)
    access_log = LedgerProvider(event_store_url, AccessLog)
    tree_heads = LedgerProvider(event_store_url, TreeHeadLedger)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # A stream cancelled at shutdown leaves its store read running in a loop thread;
            # closing a store beneath a running SQLite query crashes the process.
            await asyncio.get_running_loop().shutdown_default_executor()
            provider.close()
            governance.close()
            access_log.close()
            tree_heads.close()
            app.state.subscription_services.close()

    app = FastAPI(title="baylink", version=_package_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.query_service = provider
    app.state.governance = governance
    app.state.access_log = access_log
    app.state.tree_heads = tree_heads
    app.state.authenticator = Authenticator(admin_token, governance.get, settings.jwt_issuers)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.pseudonym_secret = _pseudonym_secret(settings)
    app.state.cursor_seal = CursorSeal(app.state.pseudonym_secret)
    app.state.subscription_services = SubscriptionServices(
        event_store_url, app.state.pseudonym_secret
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router(dict(readiness_checks or {})))
    app.include_router(metrics_router())
    app.include_router(v1_router())
    # Server spans through the global tracer provider, which the entry point or a test sets
    # up; request metrics come from RouteTelemetry, whose route templates are right.
    app.add_middleware(RouteTelemetry, paths=lambda: list(app.openapi()["paths"]))
    # No span per ASGI send or receive: a server-sent-event stream writes for hours, and
    # would add one to its request's trace for every page it sends.
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=",".join(UNTIMED),
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
    )
    # Outermost, so an oversized body is refused before anything reads it.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def _pseudonym_secret(settings: ApiSettings) -> bytes:
    if settings.pseudonym_secret is not None:
        return settings.pseudonym_secret.get_secret_value().encode()
    if settings.admin_token is not None:
        token = settings.admin_token.get_secret_value().encode()
        return hmac.new(token, b"baylink-pseudonym-secret", hashlib.sha256).digest()
    _log.warning(
        "neither BAYLINK_API_PSEUDONYM_SECRET nor an admin token is set: pseudonyms change "
        "whenever the API restarts"
    )
    return secrets.token_bytes(32)


def _package_version() -> str:
    try:
        return version("baylink")
    except PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "0+unknown"
