"""The Merkle log for auditors: signed tree heads, and inclusion and consistency proofs
served only against heads the node signed (a tree size is never taken from the request alone,
ADR 17)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

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
