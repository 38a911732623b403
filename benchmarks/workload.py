"""The benchmarks' workload: the sensor-readings dataset and rows that are all valid and unique.

Rows look like what the tabular connector hands to ``publish_rows``: one mapping per
observation, times as timezone-aware datetimes (msgpack timestamps on the wire), a ``region``
per row spread over Hong Kong, Shenzhen and Macao.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from streams import wire

DATASET_FILE = Path(__file__).with_name("sensor-readings.yaml")
REGIONS: tuple[tuple[str, float, float], ...] = (
    # region, centre latitude, centre longitude
    ("hk", 22.32, 114.17),
    ("gd-shenzhen", 22.54, 114.06),
    ("mo", 22.19, 113.54),
)
SENSORS_PER_REGION = 500
_READING_INTERVAL = timedelta(seconds=30)

Row = dict[str, Any]


def load_dataset(id_suffix: str = "") -> DatasetDefinition:
    """The sensor-readings dataset; with ``id_suffix``, a twin with its own id and topic."""
    document: Any = yaml.safe_load(DATASET_FILE.read_text(encoding="utf-8"))
    document["id"] += id_suffix
    return DatasetDefinition.from_dict(document)


def make_rows(count: int, *, start: datetime | None = None, seed: int = 7) -> list[Row]:
    """``count`` valid rows with distinct keys (sensor, time), all in the past."""
    rng = random.Random(seed)
    sensors = [
        (
            region,
            f"{region}-s{n:04d}",
            lat + rng.uniform(-0.05, 0.05),
            lon + rng.uniform(-0.05, 0.05),
        )
        for region, lat, lon in REGIONS
        for n in range(SENSORS_PER_REGION)
    ]
    readings_per_sensor = -(-count // len(sensors))
    first = start or (
        datetime.now(UTC).replace(microsecond=0) - _READING_INTERVAL * (readings_per_sensor + 10)
    )
    rows: list[Row] = []
    for i in range(count):
        region, sensor_id, lat, lon = sensors[i % len(sensors)]
        rows.append(
            {
                "sensor_id": sensor_id,
                "observed_at": first + _READING_INTERVAL * (i // len(sensors)),
                "lat": round(lat + rng.uniform(-1e-4, 1e-4), 6),
                "lon": round(lon + rng.uniform(-1e-4, 1e-4), 6),
                "speed": round(rng.uniform(0.0, 120.0), 1),
                "volume": rng.randrange(0, 400),
                "lane_closed": rng.random() < 0.02,
                "operator_id": f"op-{rng.randrange(1000):03d}",
                "region": region,
            }
        )
    return rows


def make_provenance(dataset: DatasetDefinition, label: str = "benchmark") -> Provenance:
    return Provenance(
        source_uri=f"bench://{dataset.id}/{label}",
        received_at=datetime.now(UTC),
        payload_sha256=hashlib.sha256(label.encode()).hexdigest(),
        connector="baylink-benchmark",
        connector_version="1",
        region=dataset.owner_region,
        wire_schema_version=wire.WIRE_SCHEMA_VERSION,
    )
