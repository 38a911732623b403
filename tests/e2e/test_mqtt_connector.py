"""Readings published to the running Mosquitto become records the API serves, including those
published while the connector was stopped."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from baylink.runtime.ports import free_port
from tests.support.connector import ConnectorProcess, write_config
from tests.support.embedded import admin_headers, baylink, clean_env, running_platform
from tests.support.mqtt import HOST, PORT, forget_session, publish_qos1
from tests.support.platform import SENSOR_READINGS, reading_rows, wait_until

pytestmark = pytest.mark.e2e

DATASET = "gba.traffic.sensor-readings"


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        ).encode()
        + b"\n"
        for row in rows
    )


def served_records(data_dir: Path, port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/v1/datasets/{DATASET}/records"
    page = (
        httpx.get(url, params={"limit": 10_000}, headers=admin_headers(data_dir), timeout=30)
        .raise_for_status()
        .json()
    )
    records: list[dict[str, Any]] = page["records"]
    return records


@pytest.fixture
def mqtt_names() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    yield f"baylink-test/{tag}/readings", f"baylink-test-{tag}"
    forget_session(f"baylink-test-{tag}")


def test_mqtt_readings_become_queryable_records_even_when_sent_while_the_connector_was_down(
    tmp_path: Path, mqtt_names: tuple[str, str]
) -> None:
    topic, client_id = mqtt_names
    data_dir = tmp_path / "baylink"
    port = free_port()
    config = write_config(
        tmp_path / "connectors.yaml",
        {
            "name": "mo-sensors",
            "dataset": DATASET,
            "format": "jsonl",
            "region": "mo",
            "location": f"mqtt://{HOST}:{PORT}/{topic}",
            "client_id": client_id,
            "limits": {"max_bytes": 4096},
        },
    )
    batches = [reading_rows(10, prefix=f"mqtt{n}-") for n in range(5)]
    with running_platform(data_dir, port):
        baylink(data_dir, "dataset", "register", str(SENSOR_READINGS))
        runner = ConnectorProcess(
            [str(config)], clean_env(data_dir), tmp_path / "connector.log", tmp_path
        )
        runner.start()
        try:
            runner.wait_for_output("mo-sensors: subscribed to")
            publish_qos1(topic, *(jsonl(rows) for rows in batches[:3]))
            publish_qos1(topic, b"this line is not JSON\n", b"x" * 5000)
            wait_until(
                lambda: len(served_records(data_dir, port)) == 30, 90, what="30 records served"
            )
            first_exit = runner.stop()

            # Published while no connector runs: the broker keeps them for the session.
            publish_qos1(topic, *(jsonl(rows) for rows in batches[3:]))
            runner.start()
            runner.wait_for_output("mo-sensors: subscribed to", count=2)
            wait_until(
                lambda: len(served_records(data_dir, port)) == 50, 90, what="50 records served"
            )
            second_exit = runner.stop()
        finally:
            runner.kill()
        records = served_records(data_dir, port)
        listed = json.loads(baylink(data_dir, "dataset", "list", "--json").stdout)

    assert (first_exit, second_exit) == (0, 0)
    assert len({r["record_id"] for r in records}) == 50
    assert sorted(r["sensor_id"] for r in records) == sorted(
        str(row["sensor_id"]) for rows in batches for row in rows
    )
    assert listed[0]["accepted"] == 50
    # The line that is not JSON is one rejected record; the oversize message a rejected
    # payload, recorded with its reason rather than dropped.
    assert listed[0]["rejected"] == 2
    assert (
        f"message on {topic} holds 5000 bytes; the limit is 4096 bytes "
        "(recorded as a rejected payload)" in runner.output()
    )
    assert runner.output().count("mo-sensors: published 10 records in") == 5
