"""The versioned API: every /v1 route."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.dependencies import authenticated
from api.routes import (
    access_log,
    aggregates,
    agreements,
    audit,
    audit_questions,
    datasets,
    deliveries,
    partners,
    provenance,
    records,
    snapshots,
    subscription_events,
    subscriptions,
    whitelist,
)


def v1_router() -> APIRouter:
    # Every /v1 route needs a credential, including any added later.
    router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])
    for module in (
        datasets,
        records,
        aggregates,
        snapshots,
        provenance,
        access_log,
        deliveries,
        audit,
        audit_questions,
        partners,
        whitelist,
        agreements,
        subscriptions,
        subscription_events,
    ):
        router.include_router(module.router)
    return router
