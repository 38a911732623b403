"""The cross-border whitelist: its rules and version, rules added and withdrawn.

The administrator only. `dry_run=true` answers which active agreements the change would cut
and changes nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.administration import WhitelistOutcome
from api.dependencies import AdministrationDep
from api.errors import problem_responses
from api.governance_schemas import (
    RULE_ID_PATTERN,
    CutAgreementModel,
    ReasonRequest,
    WhitelistChange,
    WhitelistModel,
    WhitelistRuleModel,
)

router = APIRouter(tags=["administration"])

DryRun = Annotated[bool, Query(description="Only answer which agreements the change would cut.")]


def _change(outcome: WhitelistOutcome) -> WhitelistChange:
    return WhitelistChange(
        dry_run=outcome.dry_run,
        rule_id=outcome.rule_id,
        whitelist_version=outcome.whitelist_version,
        cut=[CutAgreementModel.of(c) for c in outcome.cut],
    )


@router.get(
    "/whitelist", operation_id="getWhitelist", responses=problem_responses(401, 403, 429, 503)
)
def get_whitelist(administration: AdministrationDep) -> WhitelistModel:
    """The rules in force and the whitelist version every decision cites."""
    view = administration.whitelist()
    return WhitelistModel(
        version=view.version, rules=[WhitelistRuleModel.of(r) for r in view.rules]
    )


@router.post(
    "/whitelist/rules",
    status_code=201,
    operation_id="addWhitelistRule",
    responses={
        200: {"model": WhitelistChange, "description": "Dry run: nothing changed."},
        201: {"description": "Added; the whitelist version is raised."},
        **problem_responses(401, 403, 409, 422, 429, 503),
    },
)
def add_rule(
    body: WhitelistRuleModel,
    administration: AdministrationDep,
    response: Response,
    dry_run: DryRun = False,
) -> WhitelistChange:
    """Add a rule: data of that kind (or that dataset) may cross in that direction, up to
    its classification, for its purposes."""
    outcome = administration.add_rule(body.model_dump(mode="json"), dry_run)
    if dry_run:
        response.status_code = 200
    return _change(outcome)


@router.post(
    "/whitelist/rules/{rule_id}/withdraw",
    operation_id="withdrawWhitelistRule",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def withdraw_rule(
    rule_id: Annotated[str, Path(pattern=RULE_ID_PATTERN)],
    body: ReasonRequest,
    administration: AdministrationDep,
    dry_run: DryRun = False,
) -> WhitelistChange:
    """Withdraw a rule; agreements that relied on it lose access at once. The answer lists
    them (`cut`)."""
    return _change(administration.withdraw_rule(rule_id, body.reason, dry_run))
