"""The delivery log: what each partner was delivered, for the administrator and auditors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import DATASET_ID_PATTERN, EndParam, PolicyDep, StartParam
from api.errors import problem_responses
from api.routes.access_log import AfterParam, LimitParam
from api.subscription_access import ServicesDep
from api.subscription_schemas import PARTNER_ID_PATTERN, DeliveryEntryModel, DeliveryLogPage

router = APIRouter(tags=["governance"])


@router.get("/deliveries", responses=problem_responses(401, 403, 422, 429, 503))
def deliveries(
    policy: PolicyDep,
    services: ServicesDep,
    after: AfterParam = 0,
    limit: LimitParam = 100,
    partner: Annotated[
        str | None,
        Query(pattern=PARTNER_ID_PATTERN, description="Only what this partner received."),
    ] = None,
    dataset: Annotated[
        str | None,
        Query(pattern=DATASET_ID_PATTERN, max_length=120, description="Only this dataset."),
    ] = None,
    start: StartParam = None,
    end: EndParam = None,
) -> DeliveryLogPage:
    """Each batch delivered to a partner, oldest first: on which subscription and channel,
    under which agreement and whitelist version, which event-log positions, how many records
    and a digest of their ids — so "what did partner P receive of dataset D between t1 and t2,
    under which agreement" has an answer. The administrator reads every entry; a partner with
    the audit scope its own and those about its region's datasets."""
    entries = policy.delivery_entries(services.log, after, limit, partner, dataset, start, end)
    return DeliveryLogPage(
        entries=[DeliveryEntryModel(**e.as_dict()) for e in entries],
        next_after=entries[-1].position if len(entries) == limit else None,
    )
