"""The versioned API: every /v1 route."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import aggregates, datasets, provenance, records, snapshots


def v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    for module in (datasets, records, aggregates, snapshots, provenance):
        router.include_router(module.router)
    return router
