"""MQTT connector throughput: readings published to Mosquitto at QoS 1 until the connector
runner has published every one of them to Kafka (and acked it).

    python benchmarks/connector_mqtt.py [--messages N] [--readings R] [--host H] [--port P]

Starts its own Tansu broker (memory storage) and a SQLite store with the sensor-readings
dataset, runs the runner in this process with one MQTT source, publishes N JSON-lines
messages of R readings each, and reports messages and records per second from the first
publish to the last broker acknowledgement. The worker is not part of it: see
benchmarks/ingest.py for the store's side. Needs Mosquitto on HOST:PORT (127.0.0.1:1883).

N stays below Mosquitto's max_queued_messages (1,000 by default): the messages are published
in one burst, and Mosquitto drops what a client's queue cannot hold (see ADR 11).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

from baylink.runtime.broker import TansuBroker
from connectors.config import parse_config
from domain.dataset import DatasetDefinition
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from streams.connector_runner import RunnerServices, run_sources
from streams.publisher import make_producer

DATASET = Path(__file__).with_name("sensor-readings.yaml")


def _messages(count: int, readings: int) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(days=1)
    return [
        b"".join(
            json.dumps(
                {
                    "sensor_id": f"bench-{m}-{r}",
                    "observed_at": (start + timedelta(seconds=m)).isoformat(),
                    "lat": 22.5,
                    "lon": 114.0,
                    "speed": float(r % 120),
                    "volume": r % 40,
                    "lane_closed": False,
                    "region": "mo",
                }
            ).encode()
            + b"\n"
            for r in range(readings)
        )
        for m in range(count)
    ]


async def _measure(args: argparse.Namespace, bootstrap: str, store: str) -> dict[str, float]:
    catalog = Catalog(store)
    definition = DatasetDefinition.from_dict(yaml.safe_load(DATASET.read_text()))
    catalog.register(definition)
    tag = uuid.uuid4().hex[:8]
    topic, client_id = f"baylink-bench/{tag}", f"baylink-bench-{tag}"
    config = parse_config(
        {
            "sources": [
                {
                    "name": "bench",
                    "dataset": definition.id,
                    "format": "jsonl",
                    "location": f"mqtt://{args.host}:{args.port}/{topic}",
                    "client_id": client_id,
                }
            ]
        }
    )
    producer = make_producer(bootstrap)
    await producer.start()
    published = 0
    subscribed = asyncio.Event()
    all_published = asyncio.Event()

    def say(line: str) -> None:
        nonlocal published
        if "subscribed to" in line:
            subscribed.set()
        if "bench: published" in line:
            published += 1
            if published == args.messages:
                all_published.set()

    checkpoints = ConnectorCheckpoints(store)
    services = RunnerServices(producer, catalog, checkpoints, batch_size=1000, say=say)
    running = asyncio.create_task(run_sources(config, services, once=False))
    try:
        await subscribed.wait()
        messages = _messages(args.messages, args.readings)
        started = time.perf_counter()
        await asyncio.to_thread(
            publish.multiple,
            [{"topic": topic, "payload": m, "qos": 1} for m in messages],
            hostname=args.host,
            port=args.port,
        )
        try:
            await asyncio.wait_for(all_published.wait(), args.timeout)
        except TimeoutError:
            raise SystemExit(
                f"only {published} of {args.messages} messages were published within "
                f"{args.timeout:.0f}s (did Mosquitto drop some? see max_queued_messages)"
            ) from None
        elapsed = time.perf_counter() - started
    finally:
        services.stop.set()
        await running
        await producer.stop()
        checkpoints.close()
        catalog.close()
        _forget_session(args.host, args.port, client_id)
    return {
        "messages": args.messages,
        "readings_per_message": args.readings,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(args.messages / elapsed),
        "records_per_second": round(args.messages * args.readings / elapsed),
    }


def _forget_session(host: str, port: int, client_id: str) -> None:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(host, port)
    client.loop(timeout=2)
    client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=800)
    parser.add_argument("--readings", type=int, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    # paho's publish helper logs an error when its own loop ends after disconnecting.
    logging.getLogger("paho.mqtt.client").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as scratch, TansuBroker(Path(scratch)) as broker:
        figures = asyncio.run(
            _measure(args, broker.bootstrap, f"sqlite:///{Path(scratch) / 'events.sqlite'}")
        )
    json.dump(figures, sys.stdout)
    print()


if __name__ == "__main__":
    main()
