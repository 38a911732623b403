"""`baylink audit recipients | decisions | history` read the store directly and answer what the
audit API answers the administrator; bad input is one clear error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError
from tests.integration.api.conftest import ServedGoverned
from tests.integration.api.governed import GZ_BUREAU, HK, MO_DSAT, SZ
from tests.integration.api.questioned import Seeded, seeding
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(
    fresh_governed: ServedGoverned, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Seeded]:
    monkeypatch.delenv("BAYLINK_STORAGE_EVENT_STORE_URL", raising=False)
    async with seeding(fresh_governed) as seeded:
        yield seeded


def _cli(seeded: Seeded, *args: str) -> Any:
    result = CliRunner().invoke(
        app, ["audit", *args, "--event-store", seeded.served.event_store_url]
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _api(seeded: Seeded, path: str, **params: str) -> Any:
    answer = await seeded.api.get(f"/v1/audit/{path}", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_command_line_answers_what_the_api_answers_the_administrator(
    seeded: Seeded,
) -> None:
    asked = [
        (("recipients", SZ), "recipients", {"dataset": SZ}),
        (("recipients", HK, "--since", "2026-01-02T00:00:00Z"), "recipients",
         {"dataset": HK, "since": "2026-01-02T00:00:00Z"}),
        (("decisions", MO_DSAT), "decisions", {"partner": MO_DSAT}),
        (("history", "agreement", "sz-mo-traffic"), "agreements/sz-mo-traffic/history", {}),
        (("history", "rule", "hk-mo-traffic"), "whitelist/hk-mo-traffic/history", {}),
    ]  # fmt: skip
    for args, path, params in asked:
        printed = json.loads(_cli(seeded, *args, "--json"))

        assert printed == await _api(seeded, path, **params), args
    assert json.loads(_cli(seeded, "recipients", SZ, "--json"))["recipients"]


async def test_the_command_line_prints_one_line_per_recipient_decision_and_event(
    seeded: Seeded,
) -> None:
    recipients = _cli(seeded, "recipients", HK).splitlines()
    decisions = _cli(seeded, "decisions", MO_DSAT).splitlines()
    history = _cli(seeded, "history", "agreement", "sz-mo-traffic").splitlines()

    answer = await _api(seeded, "recipients", dataset=HK)
    assert recipients[-1] == f"{len(answer['recipients'])} recipients of {HK}"
    assert [line.split(" ")[0] for line in recipients[:-1:2]] == [GZ_BUREAU, GZ_BUREAU]
    assert decisions[-1].endswith(f"decisions about {MO_DSAT}")
    assert any("refused" in line and HK in line for line in decisions)
    assert [line.split(" ")[2].rstrip(";") for line in history] == [
        "proposed", "approved", "accepted", "activated", "suspended", "resumed",
    ]  # fmt: skip
    assert "reason: sensor recalibration" in history[4]


def test_bad_input_is_one_clear_error(seeded: Seeded) -> None:
    store = ["--event-store", seeded.served.event_store_url]
    cases = [
        (["recipients", SZ, "--since", "2026-01-01T00:00:00"], "--since: give a UTC offset"),
        (["recipients", SZ, "--until", "soon"], "--until: expected an ISO 8601 time"),
        (["decisions", MO_DSAT, "--since", "2026-02-01T00:00:00Z", "--until",
          "2026-01-01T00:00:00Z"], "--until must come after --since"),
        (["history", "agreement", "no-such-agreement"], "no agreement 'no-such-agreement'"),
        (["history", "rule", "no-such-rule"], "no whitelist rule 'no-such-rule'"),
    ]  # fmt: skip
    for args, message in cases:
        result = CliRunner().invoke(app, ["audit", *args, *store])

        assert isinstance(result.exception, BaylinkCliError), result.output
        assert str(result.exception).startswith(message)
    unknown_subject = CliRunner().invoke(app, ["audit", "history", "partner", "x", *store])
    assert unknown_subject.exit_code == 2
