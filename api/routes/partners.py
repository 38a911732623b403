"""Partners and their API keys: registered, listed, keys issued, rotated and revoked.

Writes need the admin scope. A key is in the answer that issues it and nowhere else; its
digest never leaves the store."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.dependencies import AdministrationDep
from api.errors import problem_responses
from api.governance_schemas import (
    KEY_ID_PATTERN,
    PARTNER_ID_PATTERN,
    IssuedKeyModel,
    KeyRequest,
    PartnerList,
    PartnerModel,
    PartnerRegistration,
    ReasonRequest,
    RegisteredPartner,
)

router = APIRouter(tags=["administration"])

PartnerId = Annotated[
    str, Path(pattern=PARTNER_ID_PATTERN, description="e.g. hk-transport-department.")
]
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, description="The key's id (not the key).")]


@router.post(
    "/partners",
    status_code=201,
    operation_id="registerPartner",
    responses={
        201: {"description": "Registered; its first key is shown this once."},
        **problem_responses(401, 403, 409, 422, 429, 503),
    },
)
def register_partner(
    body: PartnerRegistration, administration: AdministrationDep, response: Response
) -> RegisteredPartner:
    """Register a partner of a region with its clearance and scopes, and issue its first API
    key. The region is set here and nowhere else."""
    info, issued = administration.register_partner(
        body.region, body.name, body.clearance, tuple(body.scopes), body.partner_id
    )
    response.headers["Location"] = f"/v1/partners/{info.partner_id}"
    return RegisteredPartner(
        partner=PartnerModel.of(info), api_key=IssuedKeyModel.of(issued, None, None)
    )


@router.get("/partners", operation_id="listPartners", responses=problem_responses(401, 429, 503))
def list_partners(administration: AdministrationDep) -> PartnerList:
    """Every partner for the administrator; a partner sees only itself."""
    return PartnerList(partners=[PartnerModel.of(p) for p in administration.partners()])


@router.get(
    "/partners/{partner_id}",
    operation_id="getPartner",
    responses=problem_responses(401, 404, 422, 429, 503),
)
def get_partner(partner_id: PartnerId, administration: AdministrationDep) -> PartnerModel:
    """A partner, its clearance, scopes and the ids of its keys valid now. A partner sees
    only itself: any other answers as an unknown partner."""
    return PartnerModel.of(administration.partner(partner_id))


@router.post(
    "/partners/{partner_id}/keys",
    status_code=201,
    operation_id="issuePartnerKey",
    responses={
        201: {"description": "The new key, shown this once."},
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
)
def issue_key(
    partner_id: PartnerId, body: KeyRequest, administration: AdministrationDep
) -> IssuedKeyModel:
    """A new API key. With `replaces`, a rotation: the old key keeps working for
    `overlap_minutes` (at most a week), so clients can switch without a failed request."""
    issued = administration.issue_key(
        partner_id, body.replaces, timedelta(minutes=body.overlap_minutes)
    )
    return IssuedKeyModel.of(issued, body.replaces, body.overlap_minutes)


@router.post(
    "/partners/{partner_id}/keys/{key_id}/revoke",
    operation_id="revokePartnerKey",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def revoke_key(
    partner_id: PartnerId, key_id: KeyId, body: ReasonRequest, administration: AdministrationDep
) -> PartnerModel:
    """End a key at once; the reason is recorded."""
    return PartnerModel.of(administration.revoke_key(partner_id, key_id, body.reason))
