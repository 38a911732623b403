"""The access log keeps every decision with its grounds, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.classification import Classification
from domain.policy import Caller, Decision, DecisionReason
from storage.access_log import AccessLog
from storage.catalog import Catalog

pytestmark = pytest.mark.integration

AT = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
HK = Caller("hk-transport-department", "hk", Classification.INTERNAL)
MO = Caller("mo-dsat", "mo", Classification.PUBLIC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def access_log(store_url: str) -> Iterator[AccessLog]:
    app = AccessLog(store_url)
    try:
        yield app
    finally:
        app.close()


def _decision(dataset: str, allowed: bool) -> Decision:
    if allowed:
        return Decision(
            True, DecisionReason.AGREEMENT, "ok", dataset, 4, "sz-hk-2026", "cn-hk",
            columns=("link", "speed"),
        )  # fmt: skip
    return Decision(False, DecisionReason.NO_AGREEMENT, "no", dataset, 4)


def test_each_access_is_listed_with_its_decision_in_order(
    access_log: AccessLog, store_url: str
) -> None:
    access_log.record(HK, "records", _decision("sz.speed", True), rows=120, at=AT)
    access_log.record(MO, "records", _decision("sz.speed", False), at=AT)
    access_log.record(None, "records", None, at=AT, reason="no-credential")
    # Other events in the same log are passed over.
    catalog = Catalog(store_url)
    catalog.close()

    entries = access_log.entries()

    assert [(e.partner_id, e.allowed, e.reason, e.rows) for e in entries] == [
        ("hk-transport-department", True, "agreement", 120),
        ("mo-dsat", False, "no-agreement", 0),
        (None, False, "no-credential", 0),
    ]
    first = entries[0]
    assert (first.agreement_id, first.whitelist_version, first.whitelist_rule) == (
        "sz-hk-2026", 4, "cn-hk",
    )  # fmt: skip
    assert first.columns == ("link", "speed")
    assert first.at == AT
    assert [e.partner_id for e in access_log.entries(partner_id="mo-dsat")] == ["mo-dsat"]
    assert access_log.entries(after=entries[1].position) == entries[2:]
    assert len(access_log.entries(limit=2)) == 2


def test_many_accesses_page_through_by_position(access_log: AccessLog) -> None:
    for i in range(250):
        access_log.record(HK, "records", _decision(f"d{i % 3}", True), rows=i, at=AT)
    page = access_log.entries(limit=100, dataset_id="d1")
    rest = access_log.entries(after=page[-1].position, limit=100, dataset_id="d1")
    assert [e.rows for e in page + rest] == [i for i in range(250) if i % 3 == 1]
