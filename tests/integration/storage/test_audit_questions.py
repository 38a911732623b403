"""Any mix of accesses and deliveries in the log: who received a dataset and what was decided
about a partner are exactly what the entries say, and paging at any size adds up to the whole
answer."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.access import AccessRecord
from domain.delivery import DeliveryRecord
from storage.access_log import AccessLog
from storage.audit_questions import AuditQuestions

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
PARTNERS = ["hk-transport-department", "mo-dsat", "gd-guangzhou-transport"]
DATASETS = ["gd-shenzhen.traffic.readings", "hk.traffic.readings"]
ACTIONS = ["records", "aggregate", "snapshot", "provenance", "dataset", "snapshots"]
WHOLE = 10**9


class Entry(NamedTuple):
    delivery: bool
    partner: str
    dataset: str
    action: str  # the request's action, or the delivery's channel
    allowed: bool
    rows: int
    day: int
    version: int
    agreement: str | None


entries = st.lists(
    st.builds(
        Entry,
        st.booleans(),
        st.sampled_from(PARTNERS),
        st.sampled_from(DATASETS),
        st.sampled_from(ACTIONS),
        st.booleans(),
        st.integers(0, 2),
        st.integers(0, 4),
        st.integers(1, 3),
        st.sampled_from([None, "agreement-a", "agreement-b"]),
    ).map(lambda e: e._replace(action="webhook", allowed=True) if e.delivery else e),
    max_size=30,
)


def _record(entry: Entry) -> AccessRecord | DeliveryRecord:
    at = DAY0 + timedelta(days=entry.day)
    if entry.delivery:
        return DeliveryRecord(
            at, "sub-0", entry.partner, entry.dataset, entry.action, entry.agreement or "",
            entry.version, 1, 2, entry.rows, "0" * 64,
        )  # fmt: skip
    return AccessRecord(
        at, entry.partner, entry.action, entry.dataset, entry.allowed, "why", entry.agreement,
        None if entry.action == "dataset" else entry.version, None, entry.rows, [],
    )  # fmt: skip


@contextmanager
def _stored(found: list[Entry]) -> Iterator[tuple[AuditQuestions, list[int]]]:
    with tempfile.TemporaryDirectory() as directory:
        log = AccessLog(f"sqlite:///{Path(directory) / 'events.sqlite'}")
        try:
            if found:
                log.save(*[_record(e) for e in found])
            positions = [n.id for n in log.recorder.select_notifications(1, len(found) + 1)]
            yield AuditQuestions(log), positions
        finally:
            log.close()


def _received(entry: Entry) -> bool:
    if entry.delivery:
        return True
    reads = {"records", "aggregate", "snapshot", "provenance"}
    return entry.allowed and entry.action in reads and entry.rows > 0


def _channel(entry: Entry) -> str:
    if entry.delivery:
        return entry.action
    return "snapshot" if entry.action == "snapshot" else "query"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=entries, page=st.integers(1, 6), since=st.integers(0, 4), days=st.integers(1, 5))
def test_recipients_are_what_the_entries_say_and_pages_add_up(
    found: list[Entry], page: int, since: int, days: int
) -> None:
    start, end = DAY0 + timedelta(days=since), DAY0 + timedelta(days=since + days)
    with _stored(found) as (questions, positions):
        whole = questions.recipients(DATASETS[0], start, end, limit=WHOLE)
        pages: list[Any] = []
        after: int | None = 0
        while after is not None:
            answer = questions.recipients(DATASETS[0], start, end, after=after, limit=page)
            pages.extend(answer.recipients)
            after = answer.next_after

    expected: dict[tuple[str, str, str | None], tuple[int, set[int], list[int]]] = {}
    for entry, position in zip(found, positions, strict=True):
        if entry.dataset != DATASETS[0] or not since <= entry.day < since + days:
            continue
        if not _received(entry):
            continue
        key = (entry.partner, _channel(entry), entry.agreement)
        records, versions, at = expected.get(key, (0, set(), []))
        expected[key] = (records + entry.rows, versions | {entry.version}, [*at, position])
    assert {
        (r.partner_id, r.channel, r.agreement_id): (
            r.records, set(r.whitelist_versions), r.positions
        )
        for r in whole.recipients
    } == expected  # fmt: skip
    assert whole.next_after is None
    paged: dict[tuple[str, str, str | None], list[int]] = {}
    for r in pages:
        paged.setdefault((r.partner_id, r.channel, r.agreement_id), []).extend(r.positions)
    assert paged == {key: at for key, (_records, _versions, at) in expected.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=entries, page=st.integers(1, 6))
def test_decisions_are_every_policy_decision_about_the_partner_and_pages_add_up(
    found: list[Entry], page: int
) -> None:
    partner = PARTNERS[1]
    with _stored(found) as (questions, positions):
        whole = questions.decisions(partner, None, None, limit=WHOLE)
        paged = []
        after: int | None = 0
        while after is not None:
            answer = questions.decisions(partner, None, None, after=after, limit=page)
            paged.extend(answer.decisions)
            after = answer.next_after

    expected = [
        (position, "delivery" if e.delivery else e.action, e.allowed, e.dataset)
        for e, position in zip(found, positions, strict=True)
        if e.partner == partner and (e.delivery or e.action != "dataset")
    ]
    assert [(d.position, d.source, d.allowed, d.dataset_id) for d in whole.decisions] == expected
    assert paged == whole.decisions
