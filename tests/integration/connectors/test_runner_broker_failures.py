"""When the broker refuses a publish, the runner neither acks the MQTT message nor moves the
HTTP checkpoint: the payload is taken again and nothing is lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.config import parse_config
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from streams.connector_runner import RunnerServices, run_sources
from tests.support.fake_producer import FlakyProducer
from tests.support.feed_server import feed_server
from tests.support.mqtt import HOST, PORT, forget_session, publish_qos1

pytestmark = pytest.mark.integration


@pytest.fixture
def mqtt_names() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    yield f"baylink-test/{tag}/readings", f"baylink-test-{tag}"
    forget_session(f"baylink-test-{tag}")


def reading(sensor: str) -> bytes:
    return (
        b'{"sensor_id": "' + sensor.encode() + b'", "observed_at": "2024-05-01T08:00:00+08:00", '
        b'"lat": 22.5, "lon": 114.0, "speed": 40.5, "volume": 3, "lane_closed": false}\n'
    )


async def wait_for(condition: Any) -> None:
    """Poll ``condition``: the runner reports through a plain callback, not an event."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def source(**settings: Any) -> dict[str, Any]:
    return {
        "name": "flaky",
        "dataset": "gba.traffic.sensor-readings",
        "retry": {"base": 0.05, "cap": 0.1},
        **settings,
    }


async def test_an_mqtt_message_whose_publish_failed_is_delivered_again_and_published(
    store: tuple[Catalog, ConnectorCheckpoints], mqtt_names: tuple[str, str]
) -> None:
    catalog, checkpoints = store
    topic, client_id = mqtt_names
    config = parse_config(
        {
            "sources": [
                source(
                    format="jsonl", location=f"mqtt://{HOST}:{PORT}/{topic}", client_id=client_id
                )
            ]
        }
    )
    producer = FlakyProducer(failures=3)
    lines: list[str] = []
    services = RunnerServices(producer, catalog, checkpoints, batch_size=1000, say=lines.append)
    running = asyncio.create_task(run_sources(config, services, once=False))
    await wait_for(lambda: any("subscribed to" in line for line in lines))
    sensors = {f"flaky-{n}" for n in range(10)}

    await asyncio.to_thread(publish_qos1, topic, *(reading(s) for s in sorted(sensors)))
    await wait_for(lambda: sensors <= producer.sensor_ids())
    services.stop.set()
    [status] = await running

    assert producer.refused == 3
    assert status.failures >= 1
    assert "broker unreachable (test)" in (status.last_error or "")
    assert any(line.startswith("flaky: retrying in") for line in lines)
    assert sum("subscribed to" in line for line in lines) >= 2


async def test_an_http_payload_whose_publish_failed_leaves_the_checkpoint_where_it_was(
    store: tuple[Catalog, ConnectorCheckpoints],
) -> None:
    catalog, checkpoints = store
    with feed_server() as feed:
        feed.state.body = (
            b"sensor_id,observed_at,lat,lon\nflaky-http,2024-05-01T08:00:00Z,22.5,114\n"
        )
        config = parse_config({"sources": [source(format="csv", location=feed.url)]})
        producer = FlakyProducer(failures=1)
        services = RunnerServices(producer, catalog, checkpoints, batch_size=1000, say=print)

        [failed] = await run_sources(config, services, once=True)
        after_failure = checkpoints.get("flaky")
        [succeeded] = await run_sources(config, services, once=True)
        after_success = checkpoints.get("flaky")

    assert (failed.failures, failed.payloads) == (1, 0)
    assert after_failure is None
    assert (succeeded.failures, succeeded.payloads, succeeded.records) == (0, 1, 1)
    assert after_success is not None
    assert after_success["etag"] == feed.state.etag
    assert feed.state.statuses == [200, 200]
    assert "flaky-http" in producer.sensor_ids()
