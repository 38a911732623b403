"""The access log: every data request's decision, for the administrator and auditors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import DATASET_ID_PATTERN, PolicyDep
from api.errors import problem_responses
from api.schemas import AccessEntryModel, AccessLogPage

router = APIRouter(tags=["governance"])

MAX_ENTRIES = 1_000
MAX_POSITION = 2**53  # positions are 64-bit integers in the stores
# Paging of the logs auditors read.
AfterParam = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="Entries after this log position.")
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_ENTRIES, description="Entries per page.")]


@router.get("/access-log", responses=problem_responses(401, 403, 422, 429, 503))
def access_log(
    policy: PolicyDep,
    after: AfterParam = 0,
    limit: LimitParam = 100,
    partner: Annotated[
        str | None,
        Query(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$", description="Only this partner's accesses."),
    ] = None,
    dataset: Annotated[
        str | None,
        Query(pattern=DATASET_ID_PATTERN, max_length=120, description="Only this dataset."),
    ] = None,
) -> AccessLogPage:
    """Who asked for what, the decision, the agreement and whitelist version and rule it
    rests on, and the rows returned, oldest first. The administrator reads every entry; a
    partner with the audit scope its own and those about its region's datasets."""
    entries = policy.access_entries(after, limit, partner, dataset)
    return AccessLogPage(
        entries=[AccessEntryModel(**e.as_dict()) for e in entries],
        next_after=entries[-1].position if len(entries) == limit else None,
    )
