"""The catalog: which datasets exist, their definitions and how fresh their snapshots are."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import DatasetId, QueryServiceDep
from api.errors import problem_responses
from api.schemas import DatasetDetail, DatasetList, DatasetSummaryModel

router = APIRouter(tags=["catalog"])


@router.get("/datasets", responses=problem_responses(503))
def list_datasets(query: QueryServiceDep) -> DatasetList:
    """Every registered dataset with its newest snapshot."""
    return DatasetList(datasets=[DatasetSummaryModel.of(d) for d in query.list_datasets()])


@router.get("/datasets/{dataset_id}", responses=problem_responses(404, 422, 503))
def get_dataset(dataset_id: DatasetId, query: QueryServiceDep) -> DatasetDetail:
    """A dataset's definition, classification, owner, titles, record columns, newest snapshot
    and freshness."""
    return DatasetDetail.of_description(query.dataset(dataset_id))
