"""schemathesis against the governed API as the administrator and as partners of two
jurisdictions (Hong Kong's transport department, Guangzhou's transport bureau), over three
regions' stored datasets, snapshots and active agreements: stateless and stateful runs find
no failure, and every operation is reached with data that exists.

Two runs per credential:

- The ``schemathesis run`` command, as a subprocess against the API served over HTTP, with
  every phase (examples, coverage, fuzzing, stateful through the document's links), every
  check but positive_data_acceptance (some valid-looking requests are refused on purpose:
  filters that contradict each other, unknown regions or fields, cursors of other queries),
  and every warning failing the run. What schemathesis 4.32 (cli/commands/run/warnings.py)
  warns of: *missing auth* when 401, or 403, is at least 90% of an operation's answers in a
  scenario and no positive case of it was served in the run; *missing test data* when a
  scenario passed, every positive case was refused and 404 is at least 10% of those refusals
  (401, 403, 409 and 429 set aside), unless a later scenario, stateful ones included, served
  it. Those ratios miss an operation refused with 403 to its positive cases and 422 to its
  negative ones, so the test goes further: in the run's HAR log, every operation of the
  document answered 2xx at least once, except those the credential's scopes forbid, which
  answered 403 and nothing better.
- schemathesis's state machine in process over ASGI, built from the document's links: every
  link resolves to an operation and parameters (an unresolvable one fails the build), and
  each explicit link was followed, every operation a link leads to answering 2xx at least
  once through one.

Operations added to the document are included in both as they are; one a partner may not
call goes into that partner's ``forbidden`` set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.warnings import SchemathesisWarning
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.stateful.links import OpenApiLink

from api.openapi import (
    AGREEMENT,
    AGREEMENTS,
    KEY_REVOKE,
    KEYS,
    LINKS,
    PARTNERS,
    RULE_WITHDRAW,
    RULES,
    WHITELIST,
)
from domain.agreement import AgreementTerms
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, app_over, serving_governed
from tests.integration.api.governed import (
    DATASETS,
    GZ_BUREAU,
    HK,
    HK_DEPT,
    PURPOSE,
    SZ,
    GovernedStore,
)
from tests.support.credentials import ADMIN_TOKEN
from tests.support.http_server import serving_over_http

pytestmark = pytest.mark.integration

Operation = tuple[str, str]  # (METHOD, path template)


@dataclass(frozen=True)
class Credential:
    """Who the run speaks as, the operations its scopes do not allow, the agreement each
    transition it may make waits on in the seeded store, and the operations a link from the
    first agreement it lists cannot lead to with success (links from a list lead on from its
    first item only)."""

    name: str
    forbidden: frozenset[Operation] = frozenset()
    awaiting: dict[str, str] = field(default_factory=dict)  # transition -> agreement
    unlinked: frozenset[Operation] = frozenset()


ADMINISTRATOR = Credential("admin")
# The administrator's alone: the whitelist, partners and their keys, proposing an agreement and
# the transitions no party makes.
ADMINISTRATION: frozenset[Operation] = frozenset(
    {
        ("GET", WHITELIST),
        ("POST", RULES),
        ("POST", RULE_WITHDRAW),
        ("POST", PARTNERS),
        ("POST", KEYS),
        ("POST", KEY_REVOKE),
        ("POST", AGREEMENTS),
        *(("POST", f"{AGREEMENT}/{name}") for name in ("activate", "suspend", "resume", "revoke")),
    }
)
# Agreements waiting on a partner, sorted before the seeded active ones so that each partner's
# list leads first to the one it can move on: proposed by HK's region for Guangzhou (HK's
# department may approve it), approved for HK's department and for Guangzhou's bureau to accept.
AWAITING_APPROVAL = "hk-awaiting-approval"
AWAITING_HK = "sz-hk-awaiting-acceptance"
AWAITING_GZ = "hk-gz-awaiting-acceptance"
CREDENTIALS = [
    ADMINISTRATOR,
    # Reads only: the access log needs the audit scope. As a partner of the provider region it
    # approves; as a consumer it accepts, an agreement its list does not lead to first.
    Credential(
        HK_DEPT,
        ADMINISTRATION | {("GET", "/v1/access-log")},
        {"approve": AWAITING_APPROVAL, "accept": AWAITING_HK},
        frozenset({("POST", f"{AGREEMENT}/accept")}),
    ),
    # Reads and audits; it accepts what it is offered, and provides nothing it could approve.
    Credential(
        GZ_BUREAU,
        ADMINISTRATION | {("POST", f"{AGREEMENT}/approve")},
        {"accept": AWAITING_GZ},
    ),
]
SEED = 20261128
# Works around an interpreter bug that fails multi-threaded runs at random (see the module).
HOOKS = Path(__file__).parents[2] / "support" / "schemathesis_hooks.py"
CONFIG = """
[warnings]
fail-on = true

[phases.stateful]
max-steps = 10

[phases.stateful.generation]
max-examples = 100
"""


def references(store: GovernedStore) -> str:
    """What a new agreement or rule must name that no schema can say: a consumer that exists, a
    provider that owns the datasets, a validity that has begun, jurisdictions that differ. As
    dictionaries the generated bodies draw these from; the rest of each body is generated. The
    consumer is HK's department, in the provider's own jurisdiction, so that an agreement the
    run proposes can be made active whatever purpose it names."""
    provider = DATASETS[HK].owner_region
    began = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ends = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    dictionaries = {
        "consumers": [HK_DEPT],
        "datasets": sorted(d.id for d in DATASETS.values() if d.owner_region == provider),
        "providers": [provider],
        "began": [began],
        "ends": [ends],
        "sources": ["CN", "HK"],
        "destinations": ["MO"],
    }
    assert HK_DEPT in store.keys
    bindings = {
        "POST /v1/agreements": {
            "body.consumer_partner": "consumers",
            "body.datasets[*]": "datasets",
            "body.provider_region": "providers",
            "body.valid_from": "began",
            "body.valid_until": "ends",
        },
        "POST /v1/whitelist/rules": {
            "body.source_jurisdiction": "sources",
            "body.destination_jurisdiction": "destinations",
        },
    }
    lines = [
        f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n"
        for name, values in dictionaries.items()
    ]
    for operation, parameters in bindings.items():
        table = ", ".join(
            f'"{key}" = {{ dictionary = "{name}" }}' for key, name in parameters.items()
        )
        lines.append(f'[[operations]]\ninclude-name = "{operation}"\nparameters = {{ {table} }}\n')
    return "\n".join(lines)


# Both say an operation was never served; the credential's forbidden operations must not be, and
# the test asserts that of them itself (403, and nothing better).
NEVER_SERVED = {"missing_auth", "missing_test_data"}


def awaiting(credential: Credential) -> str:
    """The agreement each transition the partner may make waits on, for every case of it."""
    return "\n".join(
        f'[[operations]]\ninclude-name = "POST {AGREEMENT}/{transition}"\n'
        f'parameters = {{ agreement_id = "{agreement_id}" }}\n'
        for transition, agreement_id in sorted(credential.awaiting.items())
    )


def forbidden_warnings(credential: Credential) -> str:
    """The other warnings still fail the run on a forbidden operation."""
    display = json.dumps(
        [w.value for w in SchemathesisWarning if w.value not in NEVER_SERVED | {"low_valid_rate"}]
    )
    return "\n".join(
        f'[[operations]]\ninclude-name = "{method} {path}"\n'
        f"warnings = {{ display = {display}, fail-on = true }}\n"
        for method, path in sorted(credential.forbidden)
    )


def await_the_partners(event_store_url: str) -> None:
    """The agreements waiting on a partner (see AWAITING_APPROVAL)."""
    since = datetime.now(UTC) - timedelta(days=1)
    gz_fields = {HK: frozenset({"sensor_id", "observed_at", "speed"})}
    proposals = [
        (AWAITING_APPROVAL, "hk", GZ_BUREAU, HK, gz_fields),
        (AWAITING_HK, "gd-shenzhen", HK_DEPT, SZ, {}),
        (AWAITING_GZ, "hk", GZ_BUREAU, HK, gz_fields),
    ]
    governance = Governance(event_store_url)
    try:
        for agreement_id, provider, consumer, dataset, fields in proposals:
            terms = AgreementTerms(
                agreement_id=agreement_id,
                provider_region=provider,
                consumer_partner=consumer,
                datasets=frozenset({dataset}),
                fields=fields,
                purpose=PURPOSE,
                valid_from=since,
            )
            governance.propose(terms, "admin", DATASETS.__getitem__)
            if agreement_id != AWAITING_APPROVAL:
                governance.approve(agreement_id, provider)
    finally:
        governance.close()


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGoverned]:
    """A governed store of each test's own (it takes a second): a run writes to the access
    log, and one that may change partners or agreements leaves the next run unaffected."""
    with serving_governed(
        tmp_path_factory.mktemp("governed"), rate_limit_per_second=1e6, rate_limit_burst=10**6
    ) as governed:
        # Before the app's first request opens its own view of the store.
        await_the_partners(governed.event_store_url)
        yield governed


@pytest.fixture
def base_url(served: ServedGoverned) -> Iterator[str]:
    with serving_over_http(served.app) as url:
        yield url


def token_of(served: ServedGoverned, credential: Credential) -> str:
    return ADMIN_TOKEN if credential is ADMINISTRATOR else served.store.keys[credential.name]


def documented_operations(document: dict[str, Any]) -> set[Operation]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }


def operation_of(url: str, method: str, operations: set[Operation]) -> Operation | None:
    path = urlsplit(url).path
    for operation in operations:
        template = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(operation[1]))
        if operation[0] == method and re.fullmatch(template, path):
            return operation
    return None


def answers_by_operation(har: Path, operations: set[Operation]) -> dict[Operation, Counter[int]]:
    answers: dict[Operation, Counter[int]] = {operation: Counter() for operation in operations}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        operation = operation_of(entry["request"]["url"], entry["request"]["method"], operations)
        if operation is not None:
            answers[operation][entry["response"]["status"]] += 1
    return answers


def configuration(credential: Credential, store: GovernedStore) -> str:
    parts = [CONFIG, references(store), awaiting(credential), forbidden_warnings(credential)]
    return "\n".join(parts)


def run_schemathesis(
    base_url: str, credential: Credential, store: GovernedStore, directory: Path
) -> tuple[int, str, Path]:
    config, har = directory / "schemathesis.toml", directory / "run.har"
    config.write_text(configuration(credential, store))
    token = ADMIN_TOKEN if credential is ADMINISTRATOR else store.keys[credential.name]
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "10",
        "--workers",
        "4",
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    # Its working directory is the test's own, so nothing is left in the source tree; its
    # status is asserted with its output.
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    done = subprocess.run(
        command,
        check=False,
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr, har


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
def test_schemathesis_run_finds_no_failure_and_warns_of_nothing(
    served: ServedGoverned, base_url: str, credential: Credential, tmp_path: Path
) -> None:
    status, output, har = run_schemathesis(base_url, credential, served.store, tmp_path)

    assert status == 0, output
    assert "WARNINGS" not in output, output
    answers = answers_by_operation(har, documented_operations(served.app.openapi()))
    unserved = {
        operation
        for operation, statuses in answers.items()
        if operation not in credential.forbidden and not any(200 <= s < 300 for s in statuses)
    }
    assert not unserved, {operation: answers[operation] for operation in unserved}
    for operation in credential.forbidden:
        statuses = answers[operation]
        assert 403 in statuses, (operation, statuses)
        assert not any(200 <= s < 300 for s in statuses), (operation, statuses)


def test_a_partner_is_forbidden_only_what_the_document_declares_as_403(
    served: ServedGoverned,
) -> None:
    paths = served.app.openapi()["paths"]
    for credential in CREDENTIALS:
        for method, path in credential.forbidden:
            assert "403" in paths[path][method.lower()]["responses"], (method, path)


def schema_as(served: ServedGoverned, credential: Credential, app: Any | None = None) -> BaseSchema:
    # Links alone choose which agreement a transition is made on: no `awaiting` parameters.
    config = SchemathesisConfig.from_str(CONFIG + references(served.store))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app or served.app, config=config)
    # As configuration, so negative cases leave the credential alone as `schemathesis run
    # --header` does.
    schema.config.update(headers={"Authorization": f"Bearer {token_of(served, credential)}"})
    return schema


def explicit_transitions(machine: type[APIStateMachine]) -> list[OpenApiLink]:
    """The machine's transitions from the document's links, not from schemathesis's guesses
    (it has no public accessor for them)."""
    operations = machine._transitions.operations  # type: ignore[attr-defined]
    return [link for op in operations.values() for link in op.outgoing if not link.is_inferred]


def explicit_links(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(source operation label, status, link name) of every link the document declares."""
    return {
        (f"{method.upper()} {path}", status, name)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, answer in operation.get("responses", {}).items()
        for name in answer.get("links", {})
    }


def test_every_link_of_the_document_resolves_to_a_transition(served: ServedGoverned) -> None:
    machine = schema_as(served, ADMINISTRATOR).as_state_machine()  # raises on a broken link

    resolved = {
        (link.source.label, link.status_code, link.name) for link in explicit_transitions(machine)
    }

    # The API's own document: schemathesis adds the links it infers to its copy.
    assert resolved == explicit_links(served.app.openapi())
    assert len(resolved) == sum(len(links) for links in LINKS.values())


class SwappableApp:
    """An ASGI app that hands each request to the app of the moment."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
def test_stateful_run_follows_every_link_and_each_leads_somewhere(
    served: ServedGoverned, credential: Credential, tmp_path: Path
) -> None:
    # (link, target operation) -> statuses of the requests the link's values went into
    followed: dict[tuple[str, str], Counter[int]] = {}
    # Each scenario starts from the seeded store, as Hypothesis expects of a state machine: one
    # that approved an agreement must not leave the next finding it approved, or the same
    # choices would lead elsewhere (FlakyStrategyDefinition).
    seeded = Path(served.event_store_url.removeprefix("sqlite:///")).parent
    serving = SwappableApp(served.app)
    scenarios = count()
    base = schema_as(served, credential, serving).as_state_machine()

    class Machine(base):  # type: ignore[valid-type, misc]
        def setup(self) -> None:
            super().setup()
            store = shutil.copytree(seeded, tmp_path / f"scenario-{next(scenarios)}")
            self.stack = ExitStack()
            serving.app = self.stack.enter_context(
                app_over(f"sqlite:///{store / 'events.sqlite'}", (store / "objects").as_uri())
            )

        def teardown(self) -> None:
            self.stack.close()
            serving.app = served.app
            super().teardown()

        def step(self, input: StepInput) -> StepOutput:
            output: StepOutput = super().step(input)
            transition = input.transition
            if transition is not None and not transition.is_inferred and input.is_applied:
                key = (transition.id, input.case.operation.label)
                followed.setdefault(key, Counter())[output.response.status_code] += 1
            return output

        def validate_response(self, response: Any, case: Case[Any], **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance], recorder=self.recorder
            )

    Machine.run(
        settings=settings(
            max_examples=150,
            stateful_step_count=10,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )

    # A link from an operation the credential may not call is never followed.
    links = [
        link
        for link in explicit_transitions(base)
        if not {
            (link.source.method.upper(), link.source.path),
            (link.target.method.upper(), link.target.path),
        }
        & credential.forbidden
    ]
    assert {link.full_name for link in links} <= {name for name, _ in followed}, followed
    # Most generated filters match nothing or are refused, so a 2xx is asked of each target
    # through one of its links rather than of every link.
    served_targets = {
        target
        for (_, target), statuses in followed.items()
        if any(200 <= status < 300 for status in statuses)
    }
    reachable = {
        link.target.label
        for link in links
        if (link.target.method.upper(), link.target.path) not in credential.unlinked
    }
    assert reachable <= served_targets, followed
