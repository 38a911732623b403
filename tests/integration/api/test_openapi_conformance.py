"""Requests generated from the API's own OpenAPI document (schemathesis, in-process over ASGI):
none makes the server fail, and every answer conforms to what the document declares."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.api.conftest import ServedReadings
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/datasets"),
    ("GET", "/v1/datasets/{dataset_id}"),
    ("GET", "/v1/datasets/{dataset_id}/records"),
    ("GET", "/v1/datasets/{dataset_id}/aggregate"),
    ("GET", "/v1/datasets/{dataset_id}/snapshots"),
    ("GET", "/v1/snapshots/{dataset_id}/{snapshot_id}"),
    ("GET", "/v1/records/{record_id}/provenance"),
    ("GET", "/v1/access-log"),
    ("GET", "/v1/deliveries"),
    ("GET", "/v1/audit/tree-heads"),
    ("GET", "/v1/audit/tree-heads/latest"),
    ("GET", "/v1/audit/proofs/inclusion"),
    ("GET", "/v1/audit/proofs/consistency"),
    ("GET", "/v1/audit/recipients"),
    ("GET", "/v1/audit/decisions"),
    ("GET", "/v1/audit/agreements/{agreement_id}/history"),
    ("GET", "/v1/audit/whitelist/{rule_id}/history"),
    ("GET", "/v1/audit/bundle"),
    ("GET", "/v1/partners"),
    ("POST", "/v1/partners"),
    ("GET", "/v1/partners/{partner_id}"),
    ("POST", "/v1/partners/{partner_id}/keys"),
    ("POST", "/v1/partners/{partner_id}/keys/{key_id}/revoke"),
    ("GET", "/v1/whitelist"),
    ("POST", "/v1/whitelist/rules"),
    ("POST", "/v1/whitelist/rules/{rule_id}/withdraw"),
    ("GET", "/v1/agreements"),
    ("POST", "/v1/agreements"),
    ("GET", "/v1/agreements/{agreement_id}"),
    ("POST", "/v1/agreements/{agreement_id}/approve"),
    ("POST", "/v1/agreements/{agreement_id}/accept"),
    ("POST", "/v1/agreements/{agreement_id}/activate"),
    ("POST", "/v1/agreements/{agreement_id}/suspend"),
    ("POST", "/v1/agreements/{agreement_id}/resume"),
    ("POST", "/v1/agreements/{agreement_id}/revoke"),
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{subscription_id}"),
    ("POST", "/v1/subscriptions/{subscription_id}/pause"),
    ("POST", "/v1/subscriptions/{subscription_id}/resume"),
    ("POST", "/v1/subscriptions/{subscription_id}/cancel"),
    ("POST", "/v1/subscriptions/{subscription_id}/redrive"),
    ("GET", "/v1/subscriptions/{subscription_id}/events"),
]


@pytest.fixture
def api_schema(served_readings: ServedReadings) -> BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", served_readings.app)


def test_every_operation_of_the_document_is_exercised(api_schema: BaseSchema) -> None:
    results = list(api_schema.get_all_operations())

    declared = {(r.ok().method.upper(), r.ok().path) for r in results if isinstance(r, Ok)}

    assert len(declared) == len(results)
    assert declared == set(OPERATIONS)


# schemathesis 4.32 draws from the `random` module inside its strategies now and then, which
# Hypothesis warns about once per test (and then reports the test as flaky): its code, not ours.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_makes_the_server_fail(
    api_schema: BaseSchema, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def conforms(case: Case[Any]) -> None:
        # Some valid-looking requests are refused on purpose: filters that contradict each
        # other (end before start), unknown regions or fields, cursors of other queries.
        case.call_and_validate(headers=ADMIN, excluded_checks=[positive_data_acceptance])

    conforms()
