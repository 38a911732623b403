"""One record, one trace: connector (the `baylink ingest` process) → Kafka headers → worker
process → event store, and the API's provenance answer leads back to it.

The connector and worker export over OTLP/HTTP to a receiver in this test; the API runs here,
exporting to memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from api.app import create_app
from api.settings import ApiSettings
from tests.support.credentials import ADMIN, ADMIN_TOKEN
from tests.support.platform import (
    PlatformEnv,
    WorkerProcess,
    dataset_file,
    reading_rows,
    unique_suffix,
    wait_until,
    write_csv,
)
from tests.support.telemetry import OtlpReceiver, ReceivedSpan, in_memory_telemetry

PRODUCER, CONSUMER = 4, 5  # OTLP's span kinds


async def test_one_record_is_one_trace_from_connector_through_worker_to_api(
    tansu_broker: str, tmp_path: Path
) -> None:
    api_spans, _ = in_memory_telemetry()
    suffix = unique_suffix()
    env = PlatformEnv(
        tansu_broker, f"sqlite:///{tmp_path / 'events.sqlite'}", f"trace-{suffix}", tmp_path
    )
    env.cli("dataset", "register", str(dataset_file(tmp_path, suffix)))
    dataset_id = f"test.traffic.readings-{suffix}"
    source = write_csv(tmp_path / "one.csv", reading_rows(1, prefix="traced-"))

    with OtlpReceiver() as receiver:
        worker = WorkerProcess(env, extra_env=receiver.exporter_env(), log_level="INFO").start()
        try:
            result = env.cli(
                "ingest",
                "--dataset",
                dataset_id,
                "--wait",
                "--json",
                str(source),
                extra_env=receiver.exporter_env(),
            )
            assert json.loads(result.stdout)["accepted"] == 1
            wait_until(
                lambda: any(s.name == "eventstore append" for s in receiver.received()),
                timeout=30,
                what="the worker's spans",
            )
        finally:
            worker.stop()
        spans = receiver.received()

    [root] = [s for s in spans if s.name == f"ingest {dataset_id}" and not s.parent_span_id]
    trace = {s.name: s for s in spans if s.trace_id == root.trace_id}
    publish = trace[f"publish baylink.ingest.{dataset_id}.v1"]
    consume = _only(spans, f"ingest {dataset_id}", SpanKind.CONSUMER)
    append = trace["eventstore append"]

    assert {root.service, trace["connector fetch"].service} == {"baylink-connector"}
    assert trace["connector fetch"].parent_span_id == root.span_id
    assert trace["connector parse"].parent_span_id == root.span_id
    assert publish.parent_span_id == root.span_id
    assert publish.kind == PRODUCER
    # Across Kafka: the worker's span is the child of the publish span, via traceparent.
    assert consume.service == "baylink-worker"
    assert consume.trace_id == root.trace_id
    assert consume.parent_span_id == publish.span_id
    assert consume.attributes["baylink.records.accepted"] == 1
    assert append.parent_span_id == consume.span_id
    assert append.service == "baylink-worker"
    assert append.attributes["baylink.records"] == 1

    app = create_app(
        ApiSettings(
            event_store_url=env.event_store_url,
            object_store_url=(tmp_path / "objects").as_uri(),
            trace_url_template="http://traces.example/trace/{trace_id}",
            admin_token=SecretStr(ADMIN_TOKEN),
        )
    )
    api_spans.clear()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://baylink", headers=ADMIN
        ) as client:
            page = (await client.get(f"/v1/datasets/{dataset_id}/records")).json()
            [record] = page["records"]
            answer = await client.get(f"/v1/records/{record['record_id']}/provenance")
    finally:
        app.state.query_service.close()

    assert answer.status_code == 200
    provenance = answer.json()
    assert provenance["trace_id"] == root.trace_id
    assert provenance["trace_url"] == f"http://traces.example/trace/{root.trace_id}"
    [server] = [
        s
        for s in api_spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.name == "GET /v1/records/{record_id}/provenance"
    ]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/records/{record_id}/provenance"
    assert [
        (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x"))
        for link in server.links
    ] == [(root.trace_id, root.span_id)]
    assert server.resource.attributes["service.name"] == "baylink-tests"
    # A request is its server span, without one per ASGI send or receive: a server-sent-event
    # stream would otherwise add a span to its trace for every page it writes.
    finished = [s.name for s in api_spans.get_finished_spans()]
    assert "GET /v1/datasets/{dataset_id}/records" in finished
    assert [name for name in finished if name.endswith((" send", " receive"))] == []


def _only(spans: list[ReceivedSpan], name: str, kind: SpanKind) -> ReceivedSpan:
    matching = [s for s in spans if s.name == name and s.kind == kind.value + 1]
    assert len(matching) == 1, matching
    return matching[0]
