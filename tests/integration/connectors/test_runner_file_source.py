"""A single file as a source: taken once settled, again only when its bytes change."""

from __future__ import annotations

import os
from pathlib import Path

from connectors.config import parse_config
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from streams.connector_runner import RunnerServices, run_sources
from tests.support.fake_producer import FlakyProducer

HEADER = b"sensor_id,observed_at,lat,lon,colour\n"


async def test_a_file_source_is_taken_once_per_version_of_its_bytes(
    store: tuple[Catalog, ConnectorCheckpoints], tmp_path: Path
) -> None:
    catalog, checkpoints = store
    path = tmp_path / "latest.csv"
    path.write_bytes(HEADER + b"f1,2024-05-01T08:00:00Z,22.5,114,red\n")
    config = parse_config(
        {
            "sources": [
                {
                    "name": "latest",
                    "dataset": "gba.traffic.sensor-readings",
                    "format": "csv",
                    "location": str(path),
                    "schedule": {"settle": 0.1},
                }
            ]
        }
    )
    producer = FlakyProducer(failures=0)
    lines: list[str] = []
    services = RunnerServices(producer, catalog, checkpoints, batch_size=1000, say=lines.append)

    [first] = await run_sources(config, services, once=True)
    [again] = await run_sources(config, services, once=True)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    [touched] = await run_sources(config, services, once=True)
    path.write_bytes(
        HEADER + b"f1,2024-05-01T08:00:00Z,22.5,114,red\nf2,2024-05-01T08:01:00Z,22.5,114,red\n"
    )
    [changed] = await run_sources(config, services, once=True)

    assert config.sources[0].transport.value == "file"
    assert (first.payloads, first.records) == (1, 1)
    assert (again.payloads, again.unchanged) == (0, 0)
    assert (touched.payloads, touched.unchanged) == (0, 1)
    assert (changed.payloads, changed.records) == (1, 2)
    assert sum(len(batch) for batch in producer.sent) == 3  # 1 row, then 2
    assert list(checkpoints.load("latest")) == ["latest.csv"]
    # The parser's remarks reach the status lines.
    note = "columns not in 'gba.traffic.sensor-readings' were kept: ['colour']"
    assert f"latest: {path.as_uri()}: {note}" in lines
