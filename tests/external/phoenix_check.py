"""One record's trace, received by a real OTLP receiver written elsewhere: Arize Phoenix.

    python tests/external/phoenix_check.py [--phoenix PATH] [--protocol http/protobuf|grpc]

Starts Phoenix (``phoenix serve``; without ``--phoenix`` it is installed once into a virtual
environment under ~/.cache/baylink/phoenix, about 850 MB), then ``baylink up`` exporting its
spans to it, ingests one reading with ``baylink ingest --wait``, asks the API for the record's
provenance and reads the trace back from Phoenix's REST API: the connector's spans, the
worker's consumer span as the child of the publish span (through the Kafka traceparent
header) and the event-store append under it. Exits 0 when the trace arrived connected.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from baylink.runtime.ports import free_ports  # noqa: E402
from tests.support.embedded import admin_headers  # noqa: E402

DATASET_FILE = REPO / "tests" / "fixtures" / "datasets" / "sensor-readings.yaml"
DATASET = "gba.traffic.sensor-readings"
PROJECT = "baylink-check"
CACHE = Path.home() / ".cache" / "baylink" / "phoenix"
PHOENIX = "arize-phoenix==20.26.1"  # pinned: the REST API read below is this version's


class PhoenixCheckError(Exception):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_for(what: str, condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise PhoenixCheckError(f"timed out after {timeout:.0f} s waiting for {what}")


def phoenix_binary(given: Path | None) -> Path:
    if given is not None:
        return given
    binary = CACHE / "bin" / "phoenix"
    if not binary.exists():
        log(f"installing {PHOENIX} into {CACHE} (once; about a minute) …")
        subprocess.run([sys.executable, "-m", "venv", str(CACHE)], check=True)
        subprocess.run([str(CACHE / "bin" / "pip"), "install", "--quiet", PHOENIX], check=True)
    return binary


@contextmanager
def process(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[None]:
    with log_path.open("wb") as output:
        child = subprocess.Popen(
            argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def baylink(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "baylink", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PhoenixCheckError(f"baylink {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def trace_spans(phoenix: str, trace_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{phoenix}/v1/projects/{PROJECT}/spans", params={"trace_id": trace_id}, timeout=10
    )
    if response.status_code == 404:  # the project appears with its first stored span
        return []
    response.raise_for_status()
    spans: list[dict[str, Any]] = response.json()["data"]
    return spans


def check(spans: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the trace's shape; empty when it is connected end to end."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    ingest = by_name.get(f"ingest {DATASET}", [])
    publish = by_name.get(f"publish baylink.ingest.{DATASET}.v1", [])
    append = by_name.get("eventstore append", [])
    if len(ingest) != 2 or len(publish) != 1 or len(append) != 1:
        return [f"expected the connector's, worker's and store's spans, got {sorted(by_name)}"]
    [root] = [s for s in ingest if s["parent_id"] is None]
    [consumer] = [s for s in ingest if s["parent_id"] is not None]
    problems = []
    if publish[0]["parent_id"] != root["context"]["span_id"]:
        problems.append("the publish span is not a child of the connector's ingest span")
    if consumer["parent_id"] != publish[0]["context"]["span_id"]:
        problems.append("the worker's span is not a child of the publish span")
    if append[0]["parent_id"] != consumer["context"]["span_id"]:
        problems.append("the event-store append is not a child of the worker's span")
    return problems


def run(phoenix_bin: Path, protocol: str, workdir: Path) -> int:
    http_port, grpc_port, api_port = free_ports(3)
    phoenix = f"http://127.0.0.1:{http_port}"
    phoenix_env = os.environ | {
        "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_LOG_MIGRATIONS": "false",
    }
    endpoint = phoenix if protocol == "http/protobuf" else f"http://127.0.0.1:{grpc_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAYLINK_", "OTEL_"))}
    env |= {
        "BAYLINK_DATA_DIR": str(workdir / "baylink"),
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        # Phoenix files spans by this attribute, not by service.name.
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
    }
    log(f"starting Phoenix on {phoenix} (gRPC {grpc_port}) …")
    with process([str(phoenix_bin), "serve"], phoenix_env, workdir / "phoenix.log"):
        wait_for("Phoenix to be ready", lambda: answers(f"{phoenix}/readyz"), 120)
        log(f"starting baylink up (API on {api_port}), exporting over {protocol} …")
        up = [sys.executable, "-m", "baylink", "up", "--api-port", str(api_port)]
        with process(up, env, workdir / "baylink-up.log"):
            api = f"http://127.0.0.1:{api_port}"
            wait_for("the baylink API", lambda: answers(f"{api}/healthz"), 120)
            baylink(env, "dataset", "register", str(DATASET_FILE))
            source = workdir / "reading.csv"
            with source.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["sensor_id", "observed_at", "lat", "lon", "speed", "region"])
                moment = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
                writer.writerow(["phoenix-check-1", moment, "22.3", "114.17", "42.5", "hk"])
            outcome = json.loads(
                baylink(env, "ingest", str(source), "--dataset", DATASET, "--wait", "--json")
            )
            if outcome["accepted"] != 1:
                raise PhoenixCheckError(f"the reading was not accepted: {outcome}")
            admin = admin_headers(workdir / "baylink")
            page = httpx.get(
                f"{api}/v1/datasets/{DATASET}/records", headers=admin, timeout=30
            ).json()
            record_id = page["records"][0]["record_id"]
            provenance = httpx.get(
                f"{api}/v1/records/{record_id}/provenance", headers=admin, timeout=30
            ).json()
            trace_id = provenance["trace_id"]
            log(f"record {record_id}: trace {trace_id}; reading it back from Phoenix …")
            spans = wait_for(
                "the worker's spans in Phoenix",
                lambda: (
                    (found := trace_spans(phoenix, trace_id))
                    and any(s["name"] == "eventstore append" for s in found)
                    and found
                ),
                60,
            )
    for span in sorted(spans, key=lambda s: s["start_time"]):
        log(f"  {span['context']['span_id']} ← {span['parent_id'] or '-':16}  {span['name']}")
    problems = check(spans)
    for problem in problems:
        log(f"FAILED: {problem}")
    if not problems:
        log(f"ok: Phoenix holds trace {trace_id} from connector through Kafka to the store")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phoenix", type=Path, help="the phoenix executable [default: install]")
    parser.add_argument("--protocol", choices=["http/protobuf", "grpc"], default="http/protobuf")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="baylink-phoenix-") as directory:
            return run(phoenix_binary(args.phoenix), args.protocol, Path(directory))
    except (PhoenixCheckError, subprocess.CalledProcessError, httpx.HTTPError) as error:
        log(f"phoenix check failed: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
