"""A connector killed mid-stream (SIGKILL) and restarted loses nothing and doubles nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.connectors.conftest import FedPlatform
from tests.support.connector import write_config
from tests.support.mqtt import HOST, PORT, forget_session, publish_qos1
from tests.support.platform import reading_rows, wait_until, write_csv

pytestmark = pytest.mark.integration


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
        ).encode()
        + b"\n"
        for r in rows
    )


def paced(topic: str, messages: list[bytes]) -> None:
    for start in range(0, len(messages), 10):
        publish_qos1(topic, *messages[start : start + 10])
        time.sleep(0.1)


@pytest.fixture
def mqtt_names() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    yield f"baylink-test/{tag}/readings", f"baylink-test-{tag}"
    forget_session(f"baylink-test-{tag}")


def test_mqtt_readings_survive_a_killed_connector(
    fed: FedPlatform, tmp_path: Path, mqtt_names: tuple[str, str]
) -> None:
    topic, client_id = mqtt_names
    config = write_config(
        tmp_path / "connectors.yaml",
        {
            "name": "mqtt-crash",
            "dataset": fed.readings.id,
            "format": "jsonl",
            "location": f"mqtt://{HOST}:{PORT}/{topic}",
            "client_id": client_id,
        },
    )
    messages = [jsonl(reading_rows(5, prefix=f"crash{n}-")) for n in range(300)]
    runner = fed.connector(str(config))
    runner.start()
    try:
        runner.wait_for_output("mqtt-crash: subscribed to")
        # Sent at a pace for about 3 s, so the kill lands mid-stream, some messages in hand
        # and the rest still arriving while the connector is down.
        sender = threading.Thread(target=paced, args=(topic, messages))
        sender.start()
        runner.wait_for_output("mqtt-crash: published 5 records", count=30)
        runner.kill()
        published_before_kill = runner.output().count("mqtt-crash: published 5 records")
        sender.join(timeout=60)
        runner.start()
        wait_until(lambda: fed.audit().accepted_records >= 1500, 120, what="1,500 records")
        runner.stop()
    finally:
        runner.kill()

    audit = fed.audit()
    assert published_before_kill < 300, "the kill came too late to interrupt anything"
    assert audit.accepted_records == audit.distinct_record_ids == 1500
    assert audit.rejected == 0


def test_files_survive_a_killed_connector(fed: FedPlatform, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for n in range(60):
        write_csv(incoming / f"part-{n:03}.csv", reading_rows(25, prefix=f"file{n}-"))
    config = write_config(
        tmp_path / "connectors.yaml",
        {
            "name": "dir-crash",
            "dataset": fed.readings.id,
            "format": "csv",
            "location": str(incoming) + "/",
            "schedule": {"interval": 0.2, "settle": 0.2},
        },
    )
    runner = fed.connector(str(config))
    runner.start()
    try:
        runner.wait_for_output("dir-crash: published 25 records", count=5)
        runner.kill()
        published_before_kill = runner.output().count("dir-crash: published 25 records")
        runner.start()
        wait_until(lambda: fed.audit().accepted_records >= 1500, 120, what="1,500 records")
        runner.stop()
    finally:
        runner.kill()

    audit = fed.audit()
    assert published_before_kill < 60, "the kill came too late to interrupt anything"
    assert audit.accepted_records == audit.distinct_record_ids == 1500
    assert audit.rejected == 0
