"""Metrics per group over a dataset's records, computed next to the data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import (
    REGION_PATTERN,
    BoundingBoxParam,
    DatasetId,
    EndParam,
    PolicyDep,
    StartParam,
)
from api.errors import problem_responses
from api.schemas import AggregatePage

router = APIRouter(tags=["records"])


@router.get(
    "/datasets/{dataset_id}/aggregate",
    response_model=AggregatePage,
    responses=problem_responses(400, 401, 404, 422, 429, 503),
)
def dataset_aggregate(
    dataset_id: DatasetId,
    policy: PolicyDep,
    bbox: BoundingBoxParam,
    group_by: Annotated[
        list[str] | None,
        Query(
            description="Fields to group by (repeat the parameter); default region; an empty "
            "value groups nothing (one row over all matching records)."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        Query(description="count, or function:field with sum, mean, min or max; repeatable."),
    ] = None,
    start: StartParam = None,
    end: EndParam = None,
    region: Annotated[
        str | None, Query(pattern=REGION_PATTERN, description="Region code, e.g. hk.")
    ] = None,
) -> AggregatePage:
    """Metrics per group over every record matching the filters (snapshots and tail); for a
    partner over the rows and untransformed fields its grant reaches."""
    result = policy.aggregate(
        dataset_id,
        start=start,
        end=end,
        region=region,
        bbox=bbox,
        group_by=[g for g in group_by if g] if group_by is not None else ["region"],
        metrics=metric or ["count"],
    )
    return AggregatePage(
        dataset_id=dataset_id,
        groups=result.table.to_pylist(),
        current_to_position=result.current_to_position,
    )
