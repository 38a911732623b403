"""Where a record came from: its provenance, batch, hash-chain links and snapshot."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import QueryServiceDep, RecordId
from api.errors import problem_responses
from api.schemas import RecordProvenanceModel

router = APIRouter(tags=["provenance"])


@router.get("/records/{record_id}/provenance", responses=problem_responses(404, 422, 503))
def record_provenance(record_id: RecordId, query: QueryServiceDep) -> RecordProvenanceModel:
    """The record's provenance, the batch that stored it and the snapshot that holds it."""
    return RecordProvenanceModel.of(query.provenance(record_id))
