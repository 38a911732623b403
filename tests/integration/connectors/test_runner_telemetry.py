"""Each payload the connector runner takes is one trace, carried to Kafka and in provenance."""

from __future__ import annotations

import json

import pytest

from connectors.config import parse_config
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from streams import wire
from streams.connector_runner import RunnerServices, run_sources
from tests.support.fake_producer import FlakyProducer
from tests.support.feed_server import feed_server
from tests.support.telemetry import in_memory_telemetry

pytestmark = pytest.mark.integration

DATASET = "gba.traffic.sensor-readings"


async def test_a_polled_payload_is_one_trace_whose_ids_reach_kafka_and_provenance(
    store: tuple[Catalog, ConnectorCheckpoints],
) -> None:
    spans, _ = in_memory_telemetry()
    spans.clear()
    catalog, checkpoints = store
    producer = FlakyProducer(failures=0)
    with feed_server() as feed:
        feed.state.body = b"sensor_id,observed_at,lat,lon\ntraced,2024-05-01T08:00:00Z,22.5,114\n"
        config = parse_config(
            {
                "sources": [
                    {"name": "traced", "dataset": DATASET, "format": "csv", "location": feed.url}
                ]
            }
        )
        services = RunnerServices(producer, catalog, checkpoints, batch_size=1000, say=print)
        [status] = await run_sources(config, services, once=True)

    finished = spans.get_finished_spans()
    [root] = [s for s in finished if s.name == f"ingest {DATASET}"]
    children = {
        s.name: s
        for s in finished
        if s.parent is not None and s.parent.span_id == root.context.span_id
    }
    publish = children[f"publish baylink.ingest.{DATASET}.v1"]
    [headers] = producer.headers
    traceparent = headers[wire.H_TRACEPARENT].decode().split("-")
    provenance = json.loads(headers[wire.H_PROVENANCE])

    assert status.payloads == 1
    assert root.parent is None
    assert set(children) == {"connector parse", f"publish baylink.ingest.{DATASET}.v1"}
    assert root.attributes is not None
    assert root.attributes["baylink.source"] == "traced"
    assert traceparent[1] == format(root.context.trace_id, "032x")
    assert traceparent[2] == format(publish.context.span_id, "016x")
    assert provenance["trace_id"] == format(root.context.trace_id, "032x")
    assert provenance["source_uri"] == feed.url
