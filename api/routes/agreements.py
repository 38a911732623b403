"""Sharing agreements: proposed, listed, and moved through their lifecycle.

The administrator may do everything. A partner sees the agreements it consumes and those its
region provides (any other answers as one that does not exist); of those, a partner of the
provider region may approve and the consumer may accept. See docs/adr/0014."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from api.administration import Transition
from api.dependencies import AdministrationDep
from api.errors import problem_responses
from api.governance_schemas import (
    AGREEMENT_ID_PATTERN,
    AgreementList,
    AgreementModel,
    AgreementProposal,
    ReasonRequest,
    TransitionRequest,
)

router = APIRouter(tags=["administration"])

AgreementId = Annotated[str, Path(pattern=AGREEMENT_ID_PATTERN, examples=["sz-hk-traffic"])]
_TRANSITIONS: tuple[Transition, ...] = (
    "approve",
    "accept",
    "activate",
    "suspend",
    "resume",
    "revoke",
)


def _operation(transition: Transition) -> str:
    return f"{transition}Agreement"


@router.get(
    "/agreements", operation_id="listAgreements", responses=problem_responses(401, 429, 503)
)
def list_agreements(administration: AdministrationDep) -> AgreementList:
    """Every agreement for the administrator; for a partner those it consumes and those its
    region provides."""
    return AgreementList(agreements=[AgreementModel.of(a) for a in administration.agreements()])


@router.get(
    "/agreements/{agreement_id}",
    operation_id="getAgreement",
    responses=problem_responses(401, 404, 422, 429, 503),
)
def get_agreement(agreement_id: AgreementId, administration: AdministrationDep) -> AgreementModel:
    """An agreement's terms, state, the whitelist rules it relied on and its history."""
    return AgreementModel.of(administration.agreement(agreement_id))


@router.post(
    "/agreements",
    status_code=201,
    operation_id="proposeAgreement",
    responses={
        201: {"description": "Proposed."},
        **problem_responses(401, 403, 409, 422, 429, 503),
    },
)
def propose_agreement(
    body: AgreementProposal, administration: AdministrationDep, response: Response
) -> AgreementModel:
    """Propose an agreement from its terms; it then needs approve, accept and activate. The
    provider is the region that owns its datasets."""
    info = administration.propose(
        body.agreement_id, body.datasets, body.provider_region, body.terms
    )
    response.headers["Location"] = f"/v1/agreements/{info.terms.agreement_id}"
    return AgreementModel.of(info)


_WHO = {
    "approve": "The administrator or a partner of the provider region.",
    "accept": "The administrator or the consumer partner.",
}
_WHEN = {
    "approve": "A proposed agreement becomes approved.",
    "accept": "An approved agreement becomes accepted.",
    "activate": "An accepted agreement becomes active, if valid now and, across a border, "
    "if whitelist rules let every dataset cross.",
    "suspend": "An active agreement is suspended; give the reason.",
    "resume": "A suspended agreement is active again, checked as on activation.",
    "revoke": "The agreement ends for good; give the reason.",
}


def _register(transition: Transition) -> None:
    path = f"/agreements/{{agreement_id}}/{transition}"
    options: dict[str, Any] = {
        "operation_id": _operation(transition),
        "responses": {
            **problem_responses(401, 403, 404, 409, 422, 429, 503),
        },
        "summary": f"{transition.capitalize()} an agreement",
        "description": f"{_WHEN[transition]} {_WHO.get(transition, 'The administrator.')}",
    }
    if transition in ("suspend", "revoke"):

        def with_reason(
            agreement_id: AgreementId, body: ReasonRequest, administration: AdministrationDep
        ) -> AgreementModel:
            return AgreementModel.of(
                administration.transition(agreement_id, transition, body.reason)
            )

        router.post(path, **options)(with_reason)
        return

    def without_reason(
        agreement_id: AgreementId,
        administration: AdministrationDep,
        body: TransitionRequest | None = None,
    ) -> AgreementModel:
        return AgreementModel.of(administration.transition(agreement_id, transition))

    router.post(path, **options)(without_reason)


for _transition in _TRANSITIONS:
    _register(_transition)
