"""`baylink relay` SIGKILLed ten times while it delivers loses no record for any subscriber:
after the last restart each partner's topic holds every record of its grant (redeliveries,
recognisable by record id, are the only extras)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.policy import Caller
from domain.provenance import Provenance
from domain.subscription import Channel
from storage.catalog import Catalog
from storage.delivery_log import DeliveryLog
from storage.governance import Governance
from storage.ingestion import IngestLedger
from storage.object_store_factory import open_object_store
from storage.subscriptions import SubscriptionInfo, Subscriptions
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.governed import (
    DATASETS,
    GRANTS,
    HK_DEPT,
    MO_DSAT,
    START,
    SZ,
    store_governed,
)
from tests.integration.api.readings import as_record
from tests.support.delivery_topics import subscription_messages
from tests.support.platform import reading_rows
from tests.support.services import fresh_postgres_url

pytestmark = pytest.mark.integration

KILLS = 10
EXTRA_MESSAGES = 60
ROWS_PER_MESSAGE = 400
SECRET = "relay-crash-secret"


@pytest.fixture(scope="module")
def crowded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Any]]]:
    """The governed store on PostgreSQL with many more records of the Shenzhen dataset."""
    objects = open_object_store((tmp_path_factory.mktemp("crash") / "objects").as_uri())
    with fresh_postgres_url() as url:
        governed = store_governed(url, objects)
        dataset = DATASETS[SZ]
        rows = reading_rows(EXTRA_MESSAGES * ROWS_PER_MESSAGE, prefix="x-", start=START)
        catalog, ledger = Catalog(url), IngestLedger(url)
        try:
            processor = IngestProcessor(ledger, catalog, clock=lambda: START + timedelta(days=1))
            for message in range(EXTRA_MESSAGES):
                chunk = rows[message * ROWS_PER_MESSAGE : (message + 1) * ROWS_PER_MESSAGE]
                provenance = Provenance(
                    f"file:///extra-{message}.csv", START, f"{message % 100:02d}" * 32,
                    "tabular", "1", dataset.owner_region, wire.WIRE_SCHEMA_VERSION,
                )  # fmt: skip
                outcome = processor.process(
                    dataset.ingest_topic,
                    message % dataset.partitions,
                    1_000 + message // dataset.partitions,
                    wire.encode_rows(chunk),
                    wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None),
                )
                assert outcome.rejected == 0
        finally:
            ledger.close()
            catalog.close()
        every = governed.records[SZ] + [as_record(dataset, row) for row in rows]
        yield url, every


def _subscribe(url: str, partner_id: str) -> SubscriptionInfo:
    governance, subscriptions = Governance(url), Subscriptions(url)
    try:
        partner = governance.partner(partner_id)
        caller = Caller(partner.partner_id, partner.region, partner.clearance)
        return subscriptions.subscribe(governance, caller, DATASETS[SZ], Channel.KAFKA, partner_id)
    finally:
        subscriptions.close()
        governance.close()


def _start_relay(url: str, broker: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BAYLINK_API_PSEUDONYM_SECRET": SECRET,
        "BAYLINK_DELIVERY_PAGE_POSITIONS": "1",
        "BAYLINK_DELIVERY_POLL_SECONDS": "0.05",
    }
    argv = [sys.executable, "-m", "baylink", "relay", "--event-store", url, "--broker", broker]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _delivered(url: str, subscriptions: list[SubscriptionInfo]) -> list[int]:
    log = DeliveryLog(url)
    try:
        return [log.delivered_up_to(s.terms.subscription_id) for s in subscriptions]
    finally:
        log.close()


def _wait_for(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killing_the_relay_ten_times_loses_no_record(
    crowded_store: tuple[str, list[Any]], tansu_broker: str, tmp_path: Path
) -> None:
    url, records = crowded_store
    subscriptions = [_subscribe(url, HK_DEPT), _subscribe(url, MO_DSAT)]
    log = tmp_path / "relay.log"
    chooser = random.Random(2026)
    head = Governance(url)
    try:
        last = head.position()
    finally:
        head.close()

    kills = 0
    relay = _start_relay(url, tansu_broker, log)
    try:
        while kills < KILLS:
            before = sum(_delivered(url, subscriptions))
            _wait_for(lambda b=before: sum(_delivered(url, subscriptions)) > b, "delivery")
            time.sleep(chooser.uniform(0.0, 0.3))
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            assert min(_delivered(url, subscriptions)) < last, "delivery ended before the kills"
            relay = _start_relay(url, tansu_broker, log)
        _wait_for(lambda: min(_delivered(url, subscriptions)) >= last, "the last delivery")
    finally:
        relay.terminate()
        relay.wait(timeout=30)

    for subscription, partner in zip(subscriptions, (HK_DEPT, MO_DSAT), strict=True):
        grant = GRANTS[(partner, SZ)]
        expected = {r["record_id"] for r in records if grant.keeps(r)}
        topic = str(subscription.terms.topic)
        messages = asyncio.run(
            subscription_messages(tansu_broker, topic, subscription.terms.subscription_id)
        )
        received = [m.key.decode() for m in messages]
        assert set(received) == expected, log.read_text()[-2000:]
        assert len(received) >= len(expected)
