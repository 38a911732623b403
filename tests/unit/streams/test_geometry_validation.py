"""The ingest worker judges geometry topology too: a shape that crosses itself, sent by a
connector that does not repair (JSON lines), is rejected with its reason, not stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connectors.geometry_inspector import ShapelyInspector
from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from domain.record import RecordValidator
from domain.region import RegionRegistry
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.processor import IngestProcessor

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[114.0, 22.0], [114.1, 22.1], [114.1, 22.0], [114.0, 22.1], [114.0, 22.0]]],
}
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[114.0, 22.0], [114.1, 22.0], [114.1, 22.1], [114.0, 22.1], [114.0, 22.0]]],
}
ZONES = DatasetDefinition.from_dict(
    {
        "id": "gd-shenzhen.geo.zones",
        "kind": "geospatial",
        "owner_region": "gd-shenzhen",
        "title": {"en": "Zones", "zh-Hans": "区域"},
        "time_field": "valid_from",
        "key_fields": ["zone"],
        "geometry": {"field": "area", "crs": "GCJ-02"},
        "fields": [
            {"name": "zone", "type": "string"},
            {"name": "valid_from", "type": "timestamp"},
            {"name": "area", "type": "geometry"},
        ],
    }
)


def _rows() -> list[dict[str, object]]:
    moment = "2026-01-01T00:00:00Z"
    return [
        {"zone": "bowtie", "valid_from": moment, "area": BOWTIE},
        {"zone": "square", "valid_from": moment, "area": SQUARE},
    ]


def test_a_self_crossing_polygon_is_rejected_with_its_reason() -> None:
    validator = RecordValidator(
        ZONES, RegionRegistry.default(), geometry_inspector=ShapelyInspector()
    )
    batch = validator.validate(_rows(), "gd-shenzhen", NOW)
    assert [record[2] for record in batch.accepted] == ["square"]
    (rejection,) = batch.rejected
    assert rejection.reason.value == "invalid-geometry"
    assert rejection.message == (
        "field 'area': the Polygon is not valid: Self-intersection[114.05 22.05]"
    )


def test_without_an_inspector_only_structure_is_checked() -> None:
    batch = RecordValidator(ZONES, RegionRegistry.default()).validate(_rows(), "hk", NOW)
    assert len(batch.accepted) == 2


def test_the_ingest_processor_inspects_geometries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    catalog, ledger = Catalog(url), IngestLedger(url)
    try:
        catalog.register(ZONES)
        provenance = Provenance(
            "file:///zones.jsonl",
            NOW,
            "e" * 64,
            "tabular",
            "1",
            "gd-shenzhen",
            wire.WIRE_SCHEMA_VERSION,
        )
        headers = wire.headers_for(wire.KIND_RECORDS, ZONES.id, provenance, None)
        processor = IngestProcessor(ledger, catalog, clock=lambda: NOW)
        outcome = processor.process(ZONES.ingest_topic, 0, 0, wire.encode_rows(_rows()), headers)
    finally:
        ledger.close()
        catalog.close()
    assert (outcome.accepted, outcome.rejected) == (1, 1)
