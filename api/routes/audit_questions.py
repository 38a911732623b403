"""The questions auditors ask (ADR 20): who received a dataset, every decision about a
partner, and the history of an agreement or a whitelist rule, each with the log positions of
the events it rests on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.audit_question_schemas import DecisionsAnswer, HistoryAnswer, RecipientsAnswer
from api.audit_questions import AuditorQuestions
from api.dependencies import DATASET_ID_PATTERN, PolicyDep, SinceParam, UntilParam
from api.errors import problem_responses
from api.governance_schemas import AGREEMENT_ID_PATTERN, RULE_ID_PATTERN
from api.routes.access_log import AfterParam, LimitParam
from api.subscription_schemas import PARTNER_ID_PATTERN

router = APIRouter(prefix="/audit", tags=["audit"])


def _questions(policy: PolicyDep) -> AuditorQuestions:
    return AuditorQuestions(policy)


QuestionsDep = Annotated[AuditorQuestions, Depends(_questions)]
_ANSWERS = problem_responses(400, 401, 403, 404, 422, 429, 503)


@router.get("/recipients", responses=_ANSWERS)
def recipients(
    questions: QuestionsDep,
    dataset: Annotated[
        str, Query(pattern=DATASET_ID_PATTERN, max_length=120, description="The dataset.")
    ],
    since: SinceParam = None,
    until: UntilParam = None,
    after: AfterParam = 0,
    limit: LimitParam = 1000,
) -> RecipientsAnswer:
    """Who received the dataset's records in [since, until): per partner, channel (a
    subscription's; `query` for records, summaries and provenance the query API handed out;
    `snapshot` for snapshots read there) and agreement, the whitelist versions, how many
    records, when, and the log positions of the deliveries and requests. A page reads at most
    `limit` of them; the recipients of consecutive pages add up."""
    return RecipientsAnswer.of(questions.recipients(dataset, since, until, after, limit))


@router.get("/decisions", responses=_ANSWERS)
def decisions(
    questions: QuestionsDep,
    partner: Annotated[str, Query(pattern=PARTNER_ID_PATTERN, description="The partner.")],
    since: SinceParam = None,
    until: UntilParam = None,
    after: AfterParam = 0,
    limit: LimitParam = 100,
) -> DecisionsAnswer:
    """Every policy decision about the partner in [since, until), oldest first: each query
    API request that reached the policy, granted or refused, with the reason, agreement,
    whitelist version and rule, and each delivery to its subscriptions."""
    return DecisionsAnswer.of(questions.decisions(partner, since, until, after, limit))


@router.get("/agreements/{agreement_id}/history", responses=_ANSWERS)
def agreement_history(
    questions: QuestionsDep,
    agreement_id: Annotated[str, Path(pattern=AGREEMENT_ID_PATTERN)],
) -> HistoryAnswer:
    """Every event of the agreement, oldest first: proposed (with its terms), approved,
    accepted, activated and resumed (with the whitelist rules it crosses under), suspended
    and revoked (with the reason), each with who did it."""
    return HistoryAnswer.of("agreement", agreement_id, questions.agreement_history(agreement_id))


@router.get("/whitelist/{rule_id}/history", responses=_ANSWERS)
def rule_history(
    questions: QuestionsDep,
    rule_id: Annotated[str, Path(pattern=RULE_ID_PATTERN)],
) -> HistoryAnswer:
    """Every event of the whitelist rule, oldest first: each addition (with the rule) and
    withdrawal (with the reason), the whitelist version it made and who made it over HTTP;
    and each agreement activated or resumed under it."""
    return HistoryAnswer.of("whitelist-rule", rule_id, questions.rule_history(rule_id))
