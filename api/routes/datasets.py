"""The catalog: which datasets exist, their definitions and how fresh their snapshots are.

A partner sees only the datasets its grants reach, of each only the fields it receives, and
its grant: the agreement and purpose it rests on, the transformations and the classification
of what it receives."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import DatasetId, PolicyDep
from api.errors import problem_responses
from api.grant import Grant
from api.schemas import (
    ColumnModel,
    DatasetAccessModel,
    DatasetDetail,
    DatasetList,
    DatasetSummaryModel,
    FieldModel,
    PartnerGrantModel,
)
from domain.transformation import H3_CELL_COLUMN

router = APIRouter(tags=["catalog"])


@router.get("/datasets", responses=problem_responses(401, 429, 503))
def list_datasets(policy: PolicyDep) -> DatasetList:
    """Every dataset the caller may see, with its newest snapshot; for the administrator
    every registered dataset and the partners that can see it, under which agreement; for a
    partner its grant of each (agreement, purpose, fields, transformations, rows and the
    classification of the fields it receives)."""
    listed = []
    for summary, access in policy.datasets():
        model = DatasetSummaryModel.of(summary)
        if isinstance(access, Grant):
            model.grant = _grant_model(access)
        else:
            model.access = [
                DatasetAccessModel(
                    partner_id=a.partner_id, reason=a.reason, agreement_id=a.agreement_id
                )
                for a in access
            ]
        listed.append(model)
    return DatasetList(datasets=listed)


@router.get("/datasets/{dataset_id}", responses=problem_responses(401, 404, 422, 429, 503))
def get_dataset(dataset_id: DatasetId, policy: PolicyDep) -> DatasetDetail:
    """A dataset's definition, classification, owner, titles, record columns, newest snapshot
    and freshness; for a partner only the fields it receives, and its grant. Where the
    agreement coarsens the location to H3 cells, the fields include `h3_cell` and the
    location fields hold the cell's centre."""
    description, grant = policy.dataset(dataset_id)
    detail = DatasetDetail.of_description(description)
    if not policy.principal.admin:
        shown = {"record_id", "region", *grant.fields}
        detail.fields = [f for f in detail.fields if f.name in shown]
        detail.columns = [c for c in detail.columns if c.name in shown]
        detail.key_fields = [k for k in detail.key_fields if k in shown]
        geometry = detail.geometry
        if geometry is not None:
            located_by = {geometry.lat, geometry.lon, geometry.field}
            if not {name for name in located_by if name is not None} <= shown:
                detail.geometry = None
        if H3_CELL_COLUMN in shown and not grant.dataset.has_field(H3_CELL_COLUMN):
            detail.fields.append(_cell_field(grant))
            detail.columns.append(ColumnModel(name=H3_CELL_COLUMN, type="string", nullable=True))
        detail.grant = _grant_model(grant)
    return detail


def _grant_model(grant: Grant) -> PartnerGrantModel:
    decision = grant.decision
    return PartnerGrantModel(
        reason=decision.reason.value,
        agreement_id=decision.agreement_id,
        purpose=grant.purpose,
        classification=grant.received_classification.label,
        fields=list(grant.fields),
        transformations=[t.as_dict() for t in decision.transformations],
        row_scope=decision.row_scope.as_dict(),
    )


def _cell_field(grant: Grant) -> FieldModel:
    return FieldModel(
        name=H3_CELL_COLUMN,
        type="string",
        classification=grant.received_classification.label,
        description=f"The H3 cell (resolution {grant.h3_resolution}) of the record's location, "
        "which your agreement shares only as this cell; the location fields hold the cell's "
        "centre.",
    )
