"""The catalog: which datasets exist, their definitions and how fresh their snapshots are.

A partner sees only the datasets its grants reach, and of each only the fields it receives."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import DatasetId, PolicyDep
from api.errors import problem_responses
from api.schemas import DatasetAccessModel, DatasetDetail, DatasetList, DatasetSummaryModel

router = APIRouter(tags=["catalog"])


@router.get("/datasets", responses=problem_responses(401, 429, 503))
def list_datasets(policy: PolicyDep) -> DatasetList:
    """Every dataset the caller may see, with its newest snapshot; for the administrator
    every registered dataset and the partners that can see it, under which agreement."""
    listed = []
    for summary, audience in policy.datasets():
        model = DatasetSummaryModel.of(summary)
        if audience is not None:
            model.access = [
                DatasetAccessModel(
                    partner_id=a.partner_id, reason=a.reason, agreement_id=a.agreement_id
                )
                for a in audience
            ]
        listed.append(model)
    return DatasetList(datasets=listed)


@router.get("/datasets/{dataset_id}", responses=problem_responses(401, 404, 422, 429, 503))
def get_dataset(dataset_id: DatasetId, policy: PolicyDep) -> DatasetDetail:
    """A dataset's definition, classification, owner, titles, record columns, newest snapshot
    and freshness."""
    description, grant = policy.dataset(dataset_id)
    detail = DatasetDetail.of_description(description)
    if not policy.principal.admin:
        shown = {"record_id", "region", *grant.fields}
        detail.fields = [f for f in detail.fields if f.name in shown]
        detail.columns = [c for c in detail.columns if c.name in shown]
        detail.key_fields = [k for k in detail.key_fields if k in shown]
        if detail.geometry is not None and not {detail.geometry.lat, detail.geometry.lon} <= shown:
            detail.geometry = None
    return detail
