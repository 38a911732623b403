"""Parser throughput: each connector's parser against the raw decode of the same input.

    python benchmarks/connectors.py [--records N] [--rounds R] [--only NAME,...] [--json]

For every format, one payload of N records is built once (generated, shaped like the real
feeds the tests use as fixtures). Then R rounds, each timing back to back:

- raw: the bare decode a hand-rolled reader would need anyway (``csv.reader``, ``json.loads``
  per line, protobuf ``ParseFromString``, an XML or JSON parse), touching every item;
- baylink: the connector's parser, through ``connectors.formats`` exactly as ``baylink ingest``
  calls it, producing typed rows with notes.

It reports median records/s of both, their ratio (baylink / raw: the price of typing, checking
and explaining every row), and the peak memory traced while the parser runs once. The top-level
``"ratio"`` is the lowest per-parser ratio: the parser that costs most over its raw decode.

Progress and figures go to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/connectors.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xml.etree import ElementTree

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely
from google.transit import gtfs_realtime_pb2
from lxml import etree

from benchmarks.workload import load_dataset, make_rows
from connectors.formats import ParseOptions, format_named
from connectors.shapefile import shapefile_bundle
from domain.dataset import DatasetDefinition


@dataclass(frozen=True)
class Case:
    """One parser: the format it is reached by, how to build its payload, its raw decode."""

    name: str
    format: str
    baseline: str
    build: Callable[[int], bytes]
    raw: Callable[[bytes], int]
    dataset: Callable[[], DatasetDefinition]
    options: ParseOptions = field(default_factory=ParseOptions)


def _text_rows(count: int) -> list[dict[str, Any]]:
    rows = make_rows(count, start=datetime(2026, 1, 1, tzinfo=UTC))
    for row in rows:
        row["observed_at"] = row["observed_at"].isoformat()
    return rows


def build_csv(count: int) -> bytes:
    rows = _text_rows(count)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def raw_csv(data: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(data.decode()))) - 1


def build_jsonl(count: int) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in _text_rows(count)).encode()


def raw_jsonl(data: bytes) -> int:
    return sum(1 for line in data.decode().splitlines() if json.loads(line))


def build_vehicle_positions(count: int) -> bytes:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = 1_767_225_600
    for i, row in enumerate(make_rows(count)):
        entity = feed.entity.add()
        entity.id = f"e{i}"
        vehicle = entity.vehicle
        vehicle.vehicle.id = row["sensor_id"]
        vehicle.timestamp = 1_767_225_600 + i
        vehicle.position.latitude = row["lat"]
        vehicle.position.longitude = row["lon"]
        vehicle.position.speed = row["speed"] / 3.6
        vehicle.trip.route_id = f"R{i % 40}"
    return feed.SerializeToString()


def raw_protobuf(data: bytes) -> int:
    """Parse, then read what a reader needs of each entity (upb parses sub-messages lazily)."""
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(data)
    count = 0
    for entity in feed.entity:
        vehicle = entity.vehicle
        position = vehicle.position
        if vehicle.vehicle.id and vehicle.timestamp and position.latitude and position.longitude:
            count += 1
    return count


def build_trip_updates(count: int) -> bytes:
    """Trips of ten stop-time updates each, ``count`` updates in all."""
    feed = _feed()
    for i in range(count):
        if i % 10 == 0:
            entity = feed.entity.add()
            entity.id = f"tu{i // 10}"
            update = entity.trip_update
            update.trip.trip_id = f"trip-{i // 10}"
            update.trip.route_id = f"R{i % 40}"
            update.timestamp = _FEED_TIME
        stop = update.stop_time_update.add()
        stop.stop_sequence = i % 10 + 1
        stop.stop_id = f"S{i % 500}"
        stop.arrival.delay = i % 120
        stop.arrival.time = _FEED_TIME + 60 * (i % 10)
    return feed.SerializeToString()


def raw_trip_updates(data: bytes) -> int:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(data)
    count = 0
    for entity in feed.entity:
        trip_id = entity.trip_update.trip.trip_id
        for stop in entity.trip_update.stop_time_update:
            if trip_id and stop.stop_id and stop.arrival.time:
                count += 1
    return count


def build_alerts(count: int) -> bytes:
    feed = _feed()
    for i in range(count):
        entity = feed.entity.add()
        entity.id = f"alert-{i}"
        alert = entity.alert
        alert.informed_entity.add().route_id = f"R{i % 40}"
        period = alert.active_period.add()
        period.start, period.end = _FEED_TIME - 3600, _FEED_TIME + 3600
        alert.cause = gtfs_realtime_pb2.Alert.CONSTRUCTION
        alert.effect = gtfs_realtime_pb2.Alert.DETOUR
        alert.header_text.translation.add(text=f"Diversion {i}", language="en")
        alert.description_text.translation.add(text="Road works on the route.", language="en")
    return feed.SerializeToString()


def raw_alerts(data: bytes) -> int:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(data)
    count = 0
    for entity in feed.entity:
        alert = entity.alert
        text = alert.header_text.translation[0].text
        for informed in alert.informed_entity:
            if text and informed.route_id:
                count += 1
    return count


_FEED_TIME = 1_767_225_600


def _feed() -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = _FEED_TIME
    return feed


def build_speedmap(count: int) -> bytes:
    links = "".join(
        "<jtis_speedmap>"
        f"<LINK_ID>{3000 + i // 10}-{30000 + i}</LINK_ID><REGION>K</REGION>"
        "<ROAD_TYPE>MAJOR ROUTE</ROAD_TYPE>"
        "<ROAD_SATURATION_LEVEL>TRAFFIC GOOD</ROAD_SATURATION_LEVEL>"
        f"<TRAFFIC_SPEED>{20 + i % 60}</TRAFFIC_SPEED>"
        "<CAPTURE_DATE>2025-08-05T07:52:35</CAPTURE_DATE>"
        "</jtis_speedmap>\n"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<jtis_speedlist xmlns="http://data.one.gov.hk/td">\n{links}</jtis_speedlist>\n'
    ).encode()


def raw_speedmap(data: bytes) -> int:
    count = 0
    for link in ElementTree.fromstring(data):
        values = {child.tag.rsplit("}", 1)[-1]: child.text for child in link}
        if values.get("LINK_ID") and "TRAFFIC_SPEED" in values:
            count += 1
    return count


def build_detector(count: int) -> bytes:
    """One period of detectors with three lanes each, ``count`` lanes in all."""
    lanes = ("Fast Lane", "Middle Lane", "Slow Lane")
    detectors = []
    for d in range(-(-count // 3)):
        cells = "".join(
            f"<lane><lane_id>{lane}</lane_id><speed>{40 + (d + j) % 40}</speed>"
            f"<occupancy>{(d * j) % 30}</occupancy><volume>{(d + j) % 12}</volume>"
            "<s.d.>5.1</s.d.><valid>Y</valid></lane>"
            for j, lane in enumerate(lanes[: min(3, count - 3 * d)])
        )
        detectors.append(
            f"<detector><detector_id>AID{d:05d}</detector_id><direction>North</direction>"
            f"<lanes>{cells}</lanes></detector>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<raw_speed_volume_list><date>2025-08-05</date>'
        "<periods><period><period_from>07:53:00</period_from><period_to>07:53:30</period_to>"
        f"<detectors>{''.join(detectors)}</detectors></period></periods></raw_speed_volume_list>"
    ).encode()


def raw_detector(data: bytes) -> int:
    count = 0
    for lane in ElementTree.fromstring(data).iter("lane"):
        if lane.findtext("lane_id") and lane.findtext("speed") is not None:
            count += 1
    return count


_GENERIC = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic"


def build_sdmx_generic(count: int) -> bytes:
    """SDMX-ML 2.1 generic data shaped like the ECB's: series of 120 monthly observations."""
    series = []
    for first in range(0, count, 120):
        code = "".join(chr(65 + (first // 120 // 26**k) % 26) for k in range(3))
        observations = "".join(
            f'<generic:Obs><generic:ObsDimension value="{2000 + (first + i) % 120 // 12}-'
            f'{(first + i) % 12 + 1:02d}"/><generic:ObsValue value="{1 + i / 997:.6f}"/>'
            '<generic:Attributes><generic:Value id="OBS_STATUS" value="A"/></generic:Attributes>'
            "</generic:Obs>"
            for i in range(min(120, count - first))
        )
        series.append(
            "<generic:Series><generic:SeriesKey>"
            '<generic:Value id="FREQ" value="M"/>'
            f'<generic:Value id="CURRENCY" value="{code}"/>'
            '<generic:Value id="CURRENCY_DENOM" value="EUR"/>'
            '<generic:Value id="EXR_TYPE" value="SP00"/><generic:Value id="EXR_SUFFIX" value="A"/>'
            "</generic:SeriesKey><generic:Attributes>"
            '<generic:Value id="UNIT" value="USD"/><generic:Value id="DECIMALS" value="4"/>'
            f"</generic:Attributes>{observations}</generic:Series>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<message:GenericData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/'
        'message" xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common" '
        f'xmlns:generic="{_GENERIC}">'
        "<message:Header><message:ID>bench</message:ID><message:Test>false</message:Test>"
        "<message:Prepared>2026-01-01T00:00:00Z</message:Prepared>"
        '<message:Sender id="ECB"/><message:Structure structureID="ECB_EXR1" '
        'dimensionAtObservation="TIME_PERIOD"><common:Structure><URN>urn:sdmx:org.sdmx.'
        "infomodel.datastructure.DataStructure=ECB:ECB_EXR1(1.0)</URN></common:Structure>"
        "</message:Structure></message:Header>"
        '<message:DataSet action="Replace" structureRef="ECB_EXR1">'
        f"{''.join(series)}</message:DataSet></message:GenericData>"
    ).encode()


def raw_sdmx_generic(data: bytes) -> int:
    count = 0
    for obs in etree.fromstring(data).iter(f"{{{_GENERIC}}}Obs"):
        period = obs.find(f"{{{_GENERIC}}}ObsDimension")
        value = obs.find(f"{{{_GENERIC}}}ObsValue")
        if period is not None and value is not None and value.get("value"):
            count += 1
    return count


def build_indicator_csv(count: int) -> bytes:
    lines = ["indicator,area,period,value,unit"]
    areas = ("HK", "MO", "CN-GD", "U2")
    lines += [
        f"EXR.M.C{i // 480:04d}.EUR,{areas[i // 120 % 4]},{2000 + i % 120 // 12}-"
        f"{i % 12 + 1:02d},{1 + i / 997:.6f},per EUR"
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


def build_geojson_points(count: int) -> bytes:
    """Detector locations in the Hong Kong 1980 Grid (the dataset's CRS), as GeoJSON points."""
    features = [
        {
            "type": "Feature",
            "id": f"AID{i:06d}",
            "properties": {
                "valid_from": "2025-01-01T00:00:00+08:00",
                "road_en": f"Road {i % 97}",
                "road_tc": f"{i % 97}號路",
            },
            "geometry": {
                "type": "Point",
                "coordinates": [830_000 + (i * 37) % 9_000, 815_000 + (i * 53) % 9_000],
            },
        }
        for i in range(count)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def raw_geojson(data: bytes) -> int:
    return sum(1 for feature in json.loads(data)["features"] if feature["geometry"]["coordinates"])


def _detector_table(count: int, xs: Any, ys: Any) -> pa.Table:
    points = shapely.points(np.column_stack([xs, ys]))
    return pa.table(
        {
            "detector_id": [f"AID{i:06d}" for i in range(count)],
            "valid_from": ["2025-01-01T00:00:00+08:00"] * count,
            "road_en": [f"Road {i % 97}" for i in range(count)],
            "geometry": pa.array(shapely.to_wkb(points), pa.binary()),
        }
    )


def build_geoparquet_points(count: int) -> bytes:
    """WGS-84 points as GeoParquet 1.1 (no crs key: WGS-84, as the specification says)."""
    index = np.arange(count)
    table = _detector_table(count, 114.10 + (index % 900) / 10_000, 22.28 + (index // 900) / 10_000)
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}},
    }
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def raw_geoparquet(data: bytes) -> int:
    table = pq.read_table(pa.BufferReader(data))
    return sum(1 for value in table.column("geometry").to_pylist() if value)


def build_shapefile_points(count: int) -> bytes:
    """Points in the Hong Kong 1980 Grid as a zipped shapefile with its .prj."""
    index = np.arange(count)
    table = _detector_table(count, 830_000 + (index * 37) % 9_000, 815_000 + (index * 53) % 9_000)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # field names cut to ten characters
        path = Path(folder) / "detectors.shp"
        pyogrio.write_arrow(
            table, str(path), geometry_name="geometry", geometry_type="Point", crs="EPSG:2326"
        )
        return shapefile_bundle(path)


def raw_shapefile(data: bytes) -> int:
    _, table = pyogrio.read_arrow(data)
    return int(table.num_rows)


def _shipped(name: str) -> Callable[[], DatasetDefinition]:
    def dataset() -> DatasetDefinition:
        from connectors.datasets import load

        return load(name)

    return dataset


CASES: tuple[Case, ...] = (
    Case("csv", "csv", "csv.reader", build_csv, raw_csv, load_dataset),
    Case("jsonl", "jsonl", "json.loads per line", build_jsonl, raw_jsonl, load_dataset),
    Case(
        "gtfs-rt-vehicle-positions",
        "gtfs-rt",
        "protobuf ParseFromString + field reads",
        build_vehicle_positions,
        raw_protobuf,
        _shipped("gtfs-rt-vehicle-positions"),
    ),
    Case(
        "gtfs-rt-trip-updates",
        "gtfs-rt",
        "protobuf ParseFromString + field reads",
        build_trip_updates,
        raw_trip_updates,
        _shipped("gtfs-rt-trip-updates"),
    ),
    Case(
        "gtfs-rt-alerts",
        "gtfs-rt",
        "protobuf ParseFromString + field reads",
        build_alerts,
        raw_alerts,
        _shipped("gtfs-rt-alerts"),
    ),
    Case(
        "sdmx-generic",
        "sdmx",
        "lxml.etree.fromstring + element reads",
        build_sdmx_generic,
        raw_sdmx_generic,
        _shipped("sdmx-observations"),
    ),
    Case(
        "indicator-csv",
        "indicator-csv",
        "csv.reader",
        build_indicator_csv,
        raw_csv,
        _shipped("indicator-observations"),
    ),
    Case(
        "geojson-points",
        "geojson",
        "json.loads + feature reads",
        build_geojson_points,
        raw_geojson,
        _shipped("hk-traffic-detectors"),
    ),
    Case(
        "geoparquet-points",
        "geoparquet",
        "pyarrow.parquet.read_table + geometry reads",
        build_geoparquet_points,
        raw_geoparquet,
        _shipped("hk-traffic-detectors"),
    ),
    Case(
        "shapefile-points",
        "shapefile",
        "pyogrio.read_arrow",
        build_shapefile_points,
        raw_shapefile,
        _shipped("hk-traffic-detectors"),
    ),
    Case(
        "td-speedmap",
        "td-speedmap",
        "ElementTree.fromstring + element reads",
        build_speedmap,
        raw_speedmap,
        _shipped("td-speedmap"),
    ),
    Case(
        "td-detector",
        "td-detector",
        "ElementTree.fromstring + element reads",
        build_detector,
        raw_detector,
        _shipped("td-detector"),
    ),
)


@dataclass(frozen=True)
class Figures:
    name: str
    format: str
    baseline: str
    records: int
    payload_bytes: int
    baylink_records_per_s: float
    raw_records_per_s: float
    parser_peak_mib: float

    @property
    def ratio(self) -> float:
        return self.baylink_records_per_s / self.raw_records_per_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "baseline": self.baseline,
            "records": self.records,
            "payload_bytes": self.payload_bytes,
            "baylink_records_per_s": round(self.baylink_records_per_s),
            "raw_records_per_s": round(self.raw_records_per_s),
            "ratio": round(self.ratio, 4),
            "parser_peak_mib": round(self.parser_peak_mib, 2),
        }


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = action()
    return time.perf_counter() - started, count


def measure(case: Case, records: int, rounds: int) -> Figures:
    data = case.build(records)
    dataset = case.dataset()
    fmt = format_named(case.format)

    def parse() -> int:
        return len(fmt.parse(data, dataset, case.options).rows)

    def raw() -> int:
        return case.raw(data)

    raw_times, parse_times = [], []
    for _ in range(rounds):
        raw_time, raw_count = _timed(raw)
        parse_time, parsed_count = _timed(parse)
        if parsed_count != records or raw_count != records:
            raise SystemExit(
                f"{case.name}: expected {records} records, the parser gave {parsed_count} "
                f"and the raw decode {raw_count}"
            )
        raw_times.append(raw_time)
        parse_times.append(parse_time)
    tracemalloc.start()
    parse()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Figures(
        name=case.name,
        format=case.format,
        baseline=case.baseline,
        records=records,
        payload_bytes=len(data),
        baylink_records_per_s=records / statistics.median(parse_times),
        raw_records_per_s=records / statistics.median(raw_times),
        parser_peak_mib=peak / 2**20,
    )


def run(records: int, rounds: int, only: Sequence[str]) -> dict[str, Any]:
    chosen = [case for case in CASES if not only or case.name in only]
    unknown = set(only) - {case.name for case in CASES}
    if unknown:
        raise SystemExit(f"no benchmark for {sorted(unknown)}; known: {[c.name for c in CASES]}")
    results: list[Figures] = []
    for case in chosen:
        print(f"{case.name}: {records} records, {rounds} rounds ...", file=sys.stderr)
        figures = measure(case, records, rounds)
        print(
            f"  baylink {figures.baylink_records_per_s:,.0f} records/s, raw "
            f"({figures.baseline}) {figures.raw_records_per_s:,.0f} records/s, ratio "
            f"{figures.ratio:.3f}, parser peak {figures.parser_peak_mib:.1f} MiB",
            file=sys.stderr,
        )
        results.append(figures)
    worst = min(results, key=lambda f: f.ratio)
    return {
        "records": records,
        "rounds": rounds,
        "formats": [figures.as_dict() for figures in results],
        "ratio": round(worst.ratio, 4),
        "ratio_parser": worst.name,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, help="default: %(default)s")
    parser.add_argument("--rounds", type=int, default=5, help="default: %(default)s")
    parser.add_argument("--only", default="", help="comma-separated parser names")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    result = run(args.records, args.rounds, only)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
