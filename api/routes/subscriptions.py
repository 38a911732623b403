"""Subscriptions: a partner subscribes to a dataset its agreement grants, and pauses,
resumes, cancels or redrives its subscriptions; the administrator manages every one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.dependencies import DATASET_ID_PATTERN, PrincipalDep, QueryServiceDep
from api.enforcement import unknown_dataset
from api.errors import ConflictError, problem_responses
from api.subscription_access import GovernanceDep, OwnedSubscription, ServicesDep, views
from api.subscription_audit import AUDITED, current_access
from api.subscription_schemas import (
    PARTNER_ID_PATTERN,
    SubscribeRequest,
    SubscriptionList,
    SubscriptionView,
)
from api.subscription_services import SubscriptionServices
from domain.dataset import DatasetDefinition
from domain.errors import (
    DatasetNotFoundError,
    PartnerNotFoundError,
    SubscriptionStateError,
    SubscriptionTermsError,
)
from domain.policy import Caller, DecisionReason
from domain.subscription import SubscriptionTerms
from storage.governance import Governance
from storage.query import QueryService
from storage.subscriptions import SubscriptionInfo, Subscriptions

_Change = Callable[[Subscriptions, str], SubscriptionInfo]

router = APIRouter(tags=["subscriptions"], dependencies=[AUDITED])


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500, description="Why, for the history.")


_ONE = problem_responses(401, 404, 422, 429, 503)
_CHANGE = problem_responses(401, 404, 409, 422, 429, 503)


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses={
        201: {"headers": {"Location": {"description": "The new subscription's URL.",
                                        "schema": {"type": "string"}}}},
        **problem_responses(401, 404, 409, 422, 429, 503),
    },
)  # fmt: skip
def subscribe(
    request: Request,
    body: SubscribeRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    query: QueryServiceDep,
    governance: GovernanceDep,
    response: Response,
) -> SubscriptionView:
    """Subscribe to a dataset under the agreement that grants it now.

    A partner subscribes for itself; the administrator names the partner in ``partner_id``.
    A dataset no active agreement grants the partner answers as one that does not exist.
    The answer for a webhook shows its signing secret, this once.
    """
    access = current_access(request)
    access.dataset_id = body.dataset_id
    caller = _subscriber(principal, body, governance)
    dataset = _granted_dataset(principal, caller, body.dataset_id, query, governance)
    _check_terms(caller, body)
    try:
        info = services.subscriptions.subscribe(
            governance,
            caller,
            dataset,
            body.channel,
            principal.name,
            webhook_url=body.webhook_url,
            start_position=body.start_position,
        )
    except SubscriptionTermsError as error:
        raise ConflictError(str(error)) from None
    access.about(info)
    access.rows = 1
    response.headers["Location"] = f"/v1/subscriptions/{info.terms.subscription_id}"
    return views(services, [info], show_secret=True)[0]


@router.get(
    "/subscriptions",
    response_model=SubscriptionList,
    response_model_exclude_none=True,
    responses=problem_responses(401, 422, 429, 503),
)
def list_subscriptions(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    partner: Annotated[
        str | None,
        Query(pattern=PARTNER_ID_PATTERN, description="Only this partner's (administrator)."),
    ] = None,
    dataset: Annotated[
        str | None, Query(pattern=DATASET_ID_PATTERN, description="Only this dataset's.")
    ] = None,
) -> SubscriptionList:
    """A partner's own subscriptions; for the administrator, every partner's."""
    if not principal.admin:
        partner = principal.caller.partner_id
    infos = services.subscriptions.subscriptions(partner, dataset)
    current_access(request).rows = len(infos)
    return SubscriptionList(subscriptions=views(services, infos))


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses=_ONE,
)
def get_subscription(info: OwnedSubscription, services: ServicesDep) -> SubscriptionView:
    """One subscription: its terms, state, history, lag and delivery rate."""
    return views(services, [info])[0]


@router.post(
    "/subscriptions/{subscription_id}/pause",
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses=_CHANGE,
)
def pause(
    info: OwnedSubscription,
    principal: PrincipalDep,
    services: ServicesDep,
    body: Reason | None = None,
) -> SubscriptionView:
    """Stop delivery until resumed; nothing is skipped meanwhile."""
    reason = body.reason if body else ""
    return _changed(services, info, lambda s, i: s.pause(i, principal.name, reason))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses=_CHANGE,
)
def resume(
    info: OwnedSubscription, principal: PrincipalDep, services: ServicesDep
) -> SubscriptionView:
    """Deliver again from where delivery stopped."""
    return _changed(services, info, lambda s, i: s.resume(i, principal.name))


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses=_CHANGE,
)
def cancel(
    info: OwnedSubscription,
    principal: PrincipalDep,
    services: ServicesDep,
    body: Reason | None = None,
) -> SubscriptionView:
    """End the subscription for good."""
    reason = body.reason if body else ""
    return _changed(services, info, lambda s, i: s.cancel(i, principal.name, reason))


@router.post(
    "/subscriptions/{subscription_id}/redrive",
    response_model=SubscriptionView,
    response_model_exclude_none=True,
    responses=_CHANGE,
)
def redrive(
    info: OwnedSubscription, principal: PrincipalDep, services: ServicesDep
) -> SubscriptionView:
    """Deliver a dead-lettered webhook again, from the record that failed."""
    return _changed(services, info, lambda s, i: s.redrive(i, principal.name))


def _changed(
    services: SubscriptionServices, info: SubscriptionInfo, change: _Change
) -> SubscriptionView:
    try:
        changed = change(services.subscriptions, info.terms.subscription_id)
    except SubscriptionStateError as error:
        raise ConflictError(str(error)) from None
    return views(services, [changed])[0]


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def _subscriber(principal: Principal, body: SubscribeRequest, governance: Governance) -> Caller:
    if not principal.admin:
        if body.partner_id is not None:
            raise _invalid("partner_id", "a partner subscribes only for itself")
        return principal.caller
    if body.partner_id is None:
        raise _invalid("partner_id", "the administrator names the partner it subscribes")
    try:
        partner = governance.partner(body.partner_id)
    except PartnerNotFoundError:
        raise _invalid("partner_id", f"no partner {body.partner_id!r} is registered") from None
    return Caller(partner.partner_id, partner.region, partner.clearance)


def _granted_dataset(
    principal: Principal,
    caller: Caller,
    dataset_id: str,
    query: QueryService,
    governance: Governance,
) -> DatasetDefinition:
    try:
        dataset = query.catalog.get(dataset_id, query.regions)
    except DatasetNotFoundError:
        raise unknown_dataset(dataset_id) from None
    decision = governance.decide(caller, dataset)
    if not decision.allowed:
        if principal.admin:
            raise ConflictError(
                f"partner {caller.partner_id!r} may not receive {dataset_id}: {decision.message}"
            )
        raise unknown_dataset(dataset_id)
    if decision.reason is not DecisionReason.AGREEMENT:
        raise ConflictError(
            f"{dataset_id} is not granted to {caller.partner_id!r} by an agreement "
            f"({decision.reason.value}): only datasets shared under an agreement are subscribed to"
        )
    return dataset


def _check_terms(caller: Caller, body: SubscribeRequest) -> None:
    """Malformed terms (a webhook without a URL, a URL for another channel) are the request's
    fault: 422 before anything is stored."""
    try:
        SubscriptionTerms(
            subscription_id="check",
            partner_id=caller.partner_id or "",
            dataset_id=body.dataset_id,
            agreement_id="check",
            channel=body.channel,
            webhook_url=body.webhook_url,
            start_position=body.start_position,
        )
    except SubscriptionTermsError as error:
        field = "webhook_url" if "webhook" in str(error) else "channel"
        raise _invalid(field, str(error)) from None
