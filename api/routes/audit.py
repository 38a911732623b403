"""The Merkle log for auditors: signed tree heads, and inclusion and consistency proofs
served only against heads the node signed (a tree size is never taken from the request alone,
ADR 17)."""

from __future__ import annotations

import shutil
from pathlib import Path
from tempfile import mkdtemp
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.audit_schemas import (
    ConsistencyProofModel,
    InclusionProofModel,
    SignedTreeHeadModel,
    TreeHeadList,
)
from api.dependencies import PolicyDep, TreeHeadsDep
from api.errors import problem_responses
from api.routes.access_log import MAX_POSITION

router = APIRouter(prefix="/audit", tags=["audit"])

TreeSize = Annotated[int, Query(ge=1, le=MAX_POSITION, description="A signed head's tree size.")]


@router.get("/tree-heads", responses=problem_responses(401, 403, 422, 429, 503))
def tree_heads(
    policy: PolicyDep,
    ledger: TreeHeadsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Heads to return.")] = 100,
) -> TreeHeadList:
    """The signed tree heads of the Merkle log over the event history, newest first."""
    return TreeHeadList(heads=[SignedTreeHeadModel.of(h) for h in policy.tree_heads(ledger, limit)])


@router.get("/tree-heads/latest", responses=problem_responses(401, 403, 404, 429, 503))
def latest_tree_head(policy: PolicyDep, ledger: TreeHeadsDep) -> SignedTreeHeadModel:
    """The newest signed tree head."""
    return SignedTreeHeadModel.of(policy.latest_tree_head(ledger))


@router.get("/proofs/inclusion", responses=problem_responses(401, 403, 404, 422, 429, 503))
def inclusion_proof(
    policy: PolicyDep,
    ledger: TreeHeadsDep,
    position: Annotated[
        int, Query(ge=1, le=MAX_POSITION, description="Log position of the event.")
    ],
    tree_size: TreeSize,
) -> InclusionProofModel:
    """The audit path of the event at ``position`` in the tree of the signed head of
    ``tree_size`` leaves, with that head and the event's leaf."""
    return InclusionProofModel.of(policy.inclusion_proof(ledger, position, tree_size))


@router.get("/proofs/consistency", responses=problem_responses(401, 403, 404, 422, 429, 503))
def consistency_proof(
    policy: PolicyDep, ledger: TreeHeadsDep, first: TreeSize, second: TreeSize
) -> ConsistencyProofModel:
    """The proof that the signed head of ``first`` leaves is a prefix of the one of
    ``second``, with both heads."""
    return ConsistencyProofModel.of(policy.consistency_proof(ledger, first, second))


@router.get(
    "/bundle",
    responses={
        **problem_responses(401, 403, 422, 429, 503),
        200: {"content": {"application/zip": {}}, "description": "The evidence bundle."},
    },
    response_class=FileResponse,
)
def evidence_bundle(
    request: Request,
    policy: PolicyDep,
    ledger: TreeHeadsDep,
    start: Annotated[
        int, Query(alias="from", ge=1, le=MAX_POSITION, description="First log position.")
    ],
    end: Annotated[int, Query(alias="to", ge=1, le=MAX_POSITION, description="Last log position.")],
) -> FileResponse:
    """An evidence bundle of log positions `from` to `to` (ADR 21): the events as stored,
    widened to the signed heads around them, the consistency proof between those heads and
    the manifests of the snapshots published in the range, as a zip that `baylink audit verify
    --bundle FILE --public-key PEM` checks with no server. The API holds no node key: the
    bundle carries neither the key nor the exporter's report."""
    max_events: int = request.app.state.settings.audit_bundle_max_events
    scratch = Path(mkdtemp(prefix="baylink-bundle-"))
    out = scratch / "bundle.zip"
    try:
        policy.evidence_bundle(ledger, start, end, out, max_events)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        out,
        media_type="application/zip",
        filename=f"baylink-evidence-{start}-{end}.zip",
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )
