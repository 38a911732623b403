"""kcat, a Kafka client written outside this project, reads two partners' topics of the same
dataset: each sees only its permitted fields, with its own agreement's transformations."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from domain.subscription import Channel
from storage.object_store_factory import open_object_store
from streams.delivery_relay import DeliveryRelay, KafkaChannel, RelaySettings
from tests.integration.api.governed import (
    GRANTS,
    HK_DEPT,
    MO_DSAT,
    SZ,
    GovernedStore,
    expected_ids,
    store_governed,
)
from tests.integration.delivery.test_kafka_delivery import _relay_until_caught_up, _subscribed
from tests.support.services import fresh_postgres_url

pytestmark = pytest.mark.integration

SECRET = b"kcat-test-secret"
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    objects = open_object_store((tmp_path_factory.mktemp("kcat") / "objects").as_uri())
    with fresh_postgres_url() as url:
        yield url, store_governed(url, objects)


@pytest.fixture(scope="module")
def kcat_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Debian 12's kcat, run on a newer librdkafka: 2.0.2, which Debian ships with it, misreads
    the tagged fields of Tansu's ApiVersions v3 answer ("Read underflow") and never connects.
    The confluent-kafka wheel carries a current librdkafka with the same ABI (.so.1)."""
    assert KCAT is not None, "kcat is needed for this test: apt-get install kcat"
    spec = importlib.util.find_spec("confluent_kafka")
    assert spec is not None, "confluent-kafka (a dev dependency) carries the librdkafka kcat needs"
    assert spec.origin is not None
    bundled = sorted((Path(spec.origin).parents[1] / "confluent_kafka.libs").glob("librdkafka*"))
    assert bundled, "no librdkafka in the confluent-kafka wheel"
    libs = tmp_path_factory.mktemp("librdkafka")
    (libs / "librdkafka.so.1").symlink_to(bundled[0])
    return {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{bundled[0].parent}"}


def _kcat(broker: str, topic: str, env: dict[str, str]) -> list[dict[str, Any]]:
    assert KCAT is not None
    done = subprocess.run(
        [KCAT, "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _headers(message: dict[str, Any]) -> dict[str, str]:
    flat = message.get("headers") or []
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def test_kcat_sees_each_partners_own_view(
    governed: tuple[str, GovernedStore], tansu_broker: str, kcat_env: dict[str, str]
) -> None:
    url, store = governed
    with _subscribed(url, HK_DEPT, SZ) as hk, _subscribed(url, MO_DSAT, SZ) as mo:
        channel = KafkaChannel(tansu_broker)
        await channel.start()
        settings = RelaySettings(poll_seconds=0.05)
        relay = DeliveryRelay(url, SECRET, {Channel.KAFKA: channel}, settings)
        try:
            await _relay_until_caught_up(relay, [hk, mo])
        finally:
            await channel.stop()
            relay.close()

    raw = {r["record_id"]: r for r in store.records[SZ]}
    views: dict[str, dict[str, dict[str, Any]]] = {}
    for subscription, partner in ((hk, HK_DEPT), (mo, MO_DSAT)):
        sid = subscription.terms.subscription_id
        read = await asyncio.to_thread(_kcat, tansu_broker, str(subscription.terms.topic), kcat_env)
        mine = [m for m in read if _headers(m).get("baylink-subscription") == sid]
        events = [json.loads(m["payload"]) for m in mine]
        assert [m["key"] for m in mine] == [e["id"] for e in events]
        assert sorted(e["id"] for e in events) == sorted(expected_ids(store, partner, SZ, {}))
        grant = GRANTS[(partner, SZ)]
        for event in events:
            assert _headers(mine[0])["content-type"] == "application/cloudevents+json"
            assert set(event["data"]) <= grant.columns | {"record_id", "region"}
        views[partner] = {e["id"]: e["data"] for e in events}

    both = sorted(set(views[HK_DEPT]) & set(views[MO_DSAT]))
    assert both, "the two grants overlap on some records"
    for record_id in both:
        hk_view, mo_view, original = (
            views[HK_DEPT][record_id],
            views[MO_DSAT][record_id],
            raw[record_id],
        )
        assert re.fullmatch(r"[0-9a-f]{32}", hk_view["sensor_id"])
        assert hk_view["sensor_id"] != original["sensor_id"]
        assert mo_view["sensor_id"] == original["sensor_id"]
        assert "volume" in hk_view
        assert "volume" not in mo_view
        assert datetime.fromisoformat(mo_view["observed_at"]).minute == 0
        assert datetime.fromisoformat(hk_view["observed_at"]) == original["observed_at"]
