"""Bad input is rejected with its reason, stored as a dead letter, and never stalls a partition."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from domain.ingest import chain_id_for
from domain.provenance import Provenance
from streams import wire
from streams.publisher import make_producer
from tests.integration.ingest.conftest import RunningPlatform
from tests.support.platform import REPO, reading_rows, wait_until

pytestmark = pytest.mark.integration

PARTITION = 0


def _provenance() -> Provenance:
    return Provenance(
        source_uri="file:///bad-input-test",
        received_at=datetime.now(UTC),
        payload_sha256="0" * 64,
        connector="test",
        connector_version="1",
        region="hk",
        wire_schema_version=wire.WIRE_SCHEMA_VERSION,
    )


def _good_row(tag: str) -> dict[str, Any]:
    row = reading_rows(1, prefix=f"good-{tag}-")[0]
    row["region"] = "hk"
    return row


def _bad_messages(dataset_id: str) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    headers = wire.headers_for(wire.KIND_RECORDS, dataset_id, _provenance(), None)
    now = datetime.now(UTC)

    def rows(**changes: Any) -> bytes:
        row = _good_row("x")
        row.update(changes)
        return wire.encode_rows([{k: v for k, v in row.items() if v is not ...}])

    other_dataset = wire.headers_for(wire.KIND_RECORDS, "gba.economic.unknown", _provenance(), None)
    old_wire = [(k, b"99" if k == wire.H_WIRE_VERSION else v) for k, v in headers]
    no_provenance = [(k, v) for k, v in headers if k != wire.H_PROVENANCE]
    return [
        ("bad-encoding", b"\xc1\xff\x00not msgpack at all", headers),
        ("malformed-batch", msgspec.msgpack.encode({"not": "a list"}), headers),
        ("wrong-type", rows(speed="fast"), headers),
        ("missing-field", rows(sensor_id=...), headers),
        ("unknown-field", rows(colour="red"), headers),
        ("unknown-dataset", rows(), other_dataset),
        ("unknown-region", rows(region="atlantis"), headers),
        ("future-timestamp", rows(observed_at=now + timedelta(days=400)), headers),
        ("naive-timestamp", rows(observed_at=now.replace(tzinfo=None)), headers),
        ("out-of-range", rows(lat=95.0), headers),
        ("not-finite", rows(speed=math.nan), headers),
        ("not-finite", rows(lon=math.inf), headers),
        ("oversized-message", b"\x91" + b"\x00" * (wire.MAX_MESSAGE_BYTES + 10), headers),
        ("unsupported-wire-version", rows(), old_wire),
        ("bad-provenance", rows(), no_provenance),
    ]


async def _publish(
    bootstrap: str, topic: str, messages: list[tuple[bytes, list[tuple[str, bytes]]]]
) -> list[int]:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        offsets = []
        for value, headers in messages:
            sent = await producer.send_and_wait(
                topic, value=value, partition=PARTITION, headers=headers
            )
            offsets.append(sent.offset)
        return offsets
    finally:
        await producer.stop()


def test_every_kind_of_bad_input_is_rejected_with_its_reason_and_good_records_still_flow(
    platform: RunningPlatform,
) -> None:
    dataset = platform.readings
    chain = chain_id_for(dataset.id, PARTITION)
    head_before = platform.ledger.chain_head(chain).version
    good_headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, _provenance(), None)
    sequence: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
    for index, (reason, value, headers) in enumerate(_bad_messages(dataset.id)):
        sequence.append((reason, value, headers))
        sequence.append(("good", wire.encode_rows([_good_row(str(index))]), good_headers))

    offsets = asyncio.run(
        _publish(platform.env.broker, dataset.ingest_topic, [(v, h) for _, v, h in sequence])
    )
    wait_until(
        lambda: (
            (platform.ledger.resume_offset(dataset.ingest_topic, PARTITION) or -1) >= offsets[-1]
        ),
        timeout=120,
        what="the worker to store every message",
    )

    by_offset = {
        int(batch.source.rsplit("@", 1)[1]): batch
        for batch in platform.ledger.batches(chain, after=head_before)
    }
    for (expected, _, _), offset in zip(sequence, offsets, strict=True):
        batch = by_offset[offset]
        if expected == "good":
            assert (batch.record_count, len(batch.rejections)) == (1, 0), batch.source
        else:
            assert batch.record_count == 0, f"{expected} was accepted"
            reasons = [row[1] for row in batch.rejections]
            assert reasons == [expected], f"{batch.source}: {batch.rejections}"
            assert batch.rejections[0][2], "a rejection must say what was wrong"


def test_a_truncated_protobuf_is_recorded_as_a_rejected_payload_and_reported_in_one_line(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    feed = (REPO / "tests" / "fixtures" / "gtfs" / "bullrunner-vehicle-positions").read_bytes()
    truncated = tmp_path / "truncated.pb"
    truncated.write_bytes(feed[: len(feed) // 2])

    result = platform.env.cli(
        "ingest",
        str(truncated),
        "--dataset",
        platform.readings.id,
        "--format",
        "gtfs-rt",
        "--wait",
        "--json",
        check=False,
    )

    assert result.returncode == 2
    assert json.loads(result.stdout.strip().splitlines()[0])["rejected"] == 1
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("baylink: error:")
    assert "truncated" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_ingesting_into_an_unknown_dataset_is_one_clear_line(platform: RunningPlatform) -> None:
    result = platform.env.cli(
        "ingest",
        str(REPO / "pyproject.toml"),
        "--dataset",
        "gba.nothing.here",
        "--format",
        "csv",
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == "baylink: error: no dataset 'gba.nothing.here' is registered"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("id: [unclosed", "not valid YAML at line 1"),
        ("id: x.y\nkind: weather\n", "'weather' is not one of traffic, geospatial, economic"),
        ("- just\n- a list\n", "a dataset definition must be a mapping"),
    ],
)
def test_a_bad_dataset_file_is_one_clear_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "baylink",
            "dataset",
            "register",
            str(path),
            "--event-store",
            f"sqlite:///{tmp_path / 'e.sqlite'}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
