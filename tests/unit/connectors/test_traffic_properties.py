"""Properties of the traffic parsers (GTFS-Realtime VehiclePositions, TripUpdates, Alerts; TD
speed map, TD detectors).

For each parser, 1,000 cases of each: random bytes, damaged payloads (cut short, bytes flipped,
bytes or elements removed or repeated) and valid generated payloads. Whatever comes in, a parser
either raises PayloadError with a reason and message or returns rows of which the ingest
worker's validator accepts or rejects every one, each rejection with a message; it never takes
long; and a valid payload reads back to exactly the values written into it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from google.transit import gtfs_realtime_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.datasets import (
    GTFS_RT_ALERTS,
    GTFS_RT_TRIP_UPDATES,
    GTFS_RT_VEHICLE_POSITIONS,
    TD_DETECTOR,
    TD_SPEEDMAP,
    load,
)
from connectors.errors import PayloadError
from connectors.gtfs_alerts import parse_alerts
from connectors.gtfs_realtime import parse_vehicle_positions
from connectors.gtfs_trip_updates import parse_trip_updates
from connectors.payload import ParsedPayload
from connectors.td_detector import parse_detector
from connectors.td_speedmap import parse_speedmap
from domain.record import RecordValidator
from domain.region import RegionRegistry

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPEEDMAP = (FIXTURES / "td" / "speedmap.xml").read_bytes()
DETECTOR = (FIXTURES / "td" / "detector.xml").read_bytes()
VEHICLE_POSITIONS = (FIXTURES / "gtfs" / "bullrunner-vehicle-positions").read_bytes()
# Constructed (see gtfs_constructed.py): no real TripUpdates or Alerts sample is at hand.
TRIP_UPDATES = (FIXTURES / "gtfs" / "constructed-trip-updates.pb").read_bytes()
ALERTS = (FIXTURES / "gtfs" / "constructed-alerts.pb").read_bytes()
NOW = datetime(2100, 1, 1, tzinfo=UTC)
# Hong Kong has kept UTC+8 all year since 1979; the generated dates are later.
HONG_KONG = timezone(timedelta(hours=8))
SLOW_SECONDS = 5.0
CASES = settings(max_examples=1000, deadline=None)

Parse = Callable[[bytes], ParsedPayload]
PARSERS: dict[str, tuple[Parse, RecordValidator]] = {
    name: (parse, RecordValidator(load(dataset), RegionRegistry.default()))
    for name, parse, dataset in (
        ("vehicle-positions", parse_vehicle_positions, GTFS_RT_VEHICLE_POSITIONS),
        ("trip-updates", parse_trip_updates, GTFS_RT_TRIP_UPDATES),
        ("alerts", parse_alerts, GTFS_RT_ALERTS),
        ("speedmap", parse_speedmap, TD_SPEEDMAP),
        ("detector", parse_detector, TD_DETECTOR),
    )
}


def _outcome(name: str, data: bytes) -> ParsedPayload | None:
    """Parse ``data``; check it was quick, and that every row is accepted or rejected with a
    reason. None when the whole payload was refused (with a reason and message)."""
    parse, validator = PARSERS[name]
    started = time.monotonic()
    outcome: ParsedPayload | PayloadError
    try:
        outcome = parse(data)
    except PayloadError as error:
        outcome = error
    assert time.monotonic() - started < SLOW_SECONDS
    if isinstance(outcome, PayloadError):
        assert outcome.reason
        assert outcome.message
        return None
    parsed = outcome
    assert all(isinstance(note, str) and note for note in parsed.notes)
    batch = validator.validate(parsed.rows, "hk", NOW)
    assert len(batch.accepted) + len(batch.rejected) == len(parsed.rows)
    assert all(rejection.message for rejection in batch.rejected)
    return parsed


# Text an XML element or protobuf string carries back unchanged: no control characters, no
# surrogates or non-characters, nothing the parsers strip from either end.
_TEXT = (
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
_WORDS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_SPEEDS = st.floats(min_value=0, max_value=300, allow_nan=False, allow_infinity=False)
_LOCAL_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31))
_SECONDS = st.integers(min_value=946_684_800, max_value=4_000_000_000)


def _mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` cut short, with bytes flipped, a span removed, or random bytes spliced in."""
    size = len(base)
    index = st.integers(min_value=0, max_value=size)
    return st.one_of(
        index.map(lambda end: base[:end]),
        st.lists(st.tuples(index, st.integers(1, 255)), min_size=1, max_size=4).map(
            lambda flips: _flipped(base, flips)
        ),
        st.tuples(index, st.integers(1, 64)).map(lambda s: base[: s[0]] + base[s[0] + s[1] :]),
        st.tuples(index, st.binary(min_size=1, max_size=16)).map(
            lambda s: base[: s[0]] + s[1] + base[s[0] :]
        ),
    )


def _flipped(base: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(base)
    for position, mask in flips:
        if position < len(data):
            data[position] ^= mask
    return bytes(data)


_ELEMENT = re.compile(rb"<([A-Za-z_][\w.]*)>[^<]*</\1>|<([A-Za-z_][\w.]*)>|</[\w.]+>")


def _xml_mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """Byte damage, or one leaf element or tag removed or repeated."""
    spans = [match.span() for match in _ELEMENT.finditer(base)]
    pick = st.sampled_from(spans)
    return st.one_of(
        _mutations(base),
        pick.map(lambda span: base[: span[0]] + base[span[1] :]),
        pick.map(lambda span: base[: span[1]] + base[span[0] : span[1]] + base[span[1] :]),
    )


# --- random bytes -------------------------------------------------------------------------


@CASES
@given(st.binary(max_size=2048))
def test_random_bytes_as_vehicle_positions_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("vehicle-positions", data)


@CASES
@given(st.binary(max_size=2048))
def test_random_bytes_as_trip_updates_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("trip-updates", data)


@CASES
@given(st.binary(max_size=2048))
def test_random_bytes_as_alerts_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("alerts", data)


@CASES
@given(st.binary(max_size=2048) | st.binary(max_size=256).map(lambda b: SPEEDMAP[:300] + b))
def test_random_bytes_as_a_speed_map_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("speedmap", data)


@CASES
@given(st.binary(max_size=2048) | st.binary(max_size=256).map(lambda b: DETECTOR[:300] + b))
def test_random_bytes_as_detector_readings_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("detector", data)


# --- damaged payloads ---------------------------------------------------------------------


@CASES
@given(_mutations(VEHICLE_POSITIONS))
def test_damaged_real_vehicle_positions_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("vehicle-positions", data)


@CASES
@given(_mutations(TRIP_UPDATES))
def test_damaged_trip_updates_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("trip-updates", data)


@CASES
@given(_mutations(ALERTS))
def test_damaged_alerts_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("alerts", data)


@CASES
@given(_xml_mutations(SPEEDMAP))
def test_damaged_speed_maps_are_refused_or_give_one_row_per_link(data: bytes) -> None:
    parsed = _outcome("speedmap", data)
    if parsed is not None:
        # No link is dropped: one row per <jtis_speedmap> in the document, readable or not.
        # (The standard parser is safe here: defusedxml has just read the same bytes.)
        root = ElementTree.fromstring(data)
        links = [child for child in root if str(child.tag).endswith("jtis_speedmap")]
        assert len(parsed.rows) == len(links)


@CASES
@given(_xml_mutations(DETECTOR))
def test_damaged_detector_readings_are_refused_or_every_row_judged(data: bytes) -> None:
    _outcome("detector", data)


# --- valid generated payloads -------------------------------------------------------------


def _leaf(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{escape(value)}</{name}>"


def _hong_kong(moment: datetime) -> datetime:
    return moment.replace(tzinfo=HONG_KONG).astimezone(UTC)


_LINKS = st.lists(
    st.fixed_dictionaries(
        {
            "link_id": _WORDS,
            "td_region": st.sampled_from(["HK", "K", "ST", "TM"]),
            "road_type": st.none() | _TEXT,
            "saturation_level": st.none() | _TEXT,
            "speed": st.none() | _SPEEDS,
            "captured_at": _LOCAL_TIMES.map(lambda moment: moment.replace(microsecond=0)),
        }
    ),
    max_size=8,
)


@CASES
@given(_LINKS, st.booleans())
def test_a_generated_speed_map_reads_back_to_its_values(
    links: list[dict[str, object]], namespaced: bool
) -> None:
    body = "".join(
        "<jtis_speedmap>"
        + _leaf("LINK_ID", str(link["link_id"]))
        + _leaf("REGION", str(link["td_region"]))
        + _leaf("ROAD_TYPE", _optional(link["road_type"]))
        + _leaf("ROAD_SATURATION_LEVEL", _optional(link["saturation_level"]))
        # An empty element is how the feed leaves a speed out.
        + (
            "<TRAFFIC_SPEED/>"
            if link["speed"] is None
            else _leaf("TRAFFIC_SPEED", repr(link["speed"]))
        )
        + _leaf("CAPTURE_DATE", _as_datetime(link["captured_at"]).isoformat())
        + "</jtis_speedmap>"
        for link in links
    )
    namespace = ' xmlns="http://data.one.gov.hk/td"' if namespaced else ""
    data = (
        f'<?xml version="1.0" encoding="UTF-8"?><jtis_speedlist{namespace}>{body}</jtis_speedlist>'
    )

    parsed = _outcome("speedmap", data.encode())

    expected = [
        {
            **{key: value for key, value in link.items() if value is not None},
            "captured_at": _hong_kong(_as_datetime(link["captured_at"])),
        }
        for link in links
    ]
    assert parsed is not None
    assert parsed.rows == expected


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _as_datetime(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


_LANES = st.lists(
    st.fixed_dictionaries(
        {
            "lane_id": st.sampled_from(["Fast Lane", "Middle Lane", "Slow Lane"]),
            "speed": st.none() | _SPEEDS,
            "occupancy": st.none() | st.floats(min_value=0, max_value=100),
            "volume": st.none() | st.integers(min_value=0, max_value=200),
            "speed_sd": st.none() | _SPEEDS,
            "valid": st.booleans(),
        }
    ),
    min_size=1,
    max_size=3,
)
_DETECTORS = st.lists(
    st.tuples(_WORDS, st.none() | _TEXT, _LANES),
    max_size=3,
)
_PERIODS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=86_399), _DETECTORS), min_size=1, max_size=3
)


@CASES
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), _PERIODS)
def test_generated_detector_readings_read_back_to_their_values(
    day: date, periods: list[tuple[int, list[tuple[str, str | None, list[dict[str, object]]]]]]
) -> None:
    midnight = datetime.combine(day, datetime.min.time())
    expected: list[dict[str, object]] = []
    body = ""
    for start_second, detectors in periods:
        start = midnight + timedelta(seconds=start_second)
        end = start + timedelta(seconds=30)
        body += (
            f"<period><period_from>{start:%H:%M:%S}</period_from>"
            f"<period_to>{end:%H:%M:%S}</period_to><detectors>"
        )
        for detector_id, direction, lanes in detectors:
            body += f"<detector>{_leaf('detector_id', detector_id)}{_leaf('direction', direction)}"
            body += "<lanes>"
            for lane in lanes:
                body += "<lane>" + _lane_xml(lane) + "</lane>"
                expected.append(
                    {
                        "detector_id": detector_id,
                        **({} if direction is None else {"direction": direction}),
                        "period_start": _hong_kong(start),
                        "period_end": _hong_kong(end),
                        **{key: value for key, value in lane.items() if value is not None},
                    }
                )
            body += "</lanes></detector>"
        body += "</detectors></period>"
    data = (
        f"<raw_speed_volume_list><date>{day.isoformat()}</date>"
        f"<periods>{body}</periods></raw_speed_volume_list>"
    )

    parsed = _outcome("detector", data.encode())

    assert parsed is not None
    assert parsed.rows == expected


def _lane_xml(lane: dict[str, object]) -> str:
    def written(value: object) -> str | None:
        if value is None:
            return ""  # the feed writes an empty element: <occupancy></occupancy>
        if isinstance(value, bool):
            return "Y" if value else "N"
        return escape(value) if isinstance(value, str) else repr(value)

    return "".join(
        f"<{name}>{written(lane[field])}</{name}>"
        for name, field in (
            ("lane_id", "lane_id"),
            ("speed", "speed"),
            ("occupancy", "occupancy"),
            ("volume", "volume"),
            ("s.d.", "speed_sd"),
            ("valid", "valid"),
        )
    )


_STOPS = st.lists(
    st.fixed_dictionaries(
        {
            "stop_id": st.none() | _TEXT,
            "stop_sequence": st.none() | st.integers(min_value=0, max_value=2**32 - 1),
            "arrival_time": st.none() | _SECONDS,
            "arrival_delay": st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1),
        }
    ),
    max_size=4,
)
_UPDATES = st.lists(
    st.tuples(_TEXT, st.none() | _TEXT, st.none() | _SECONDS, _STOPS),
    max_size=4,
    unique_by=lambda update: update[0],
)


@CASES
@given(_SECONDS, _UPDATES)
def test_generated_trip_updates_read_back_to_their_values(
    header: int,
    updates: list[tuple[str, str | None, int | None, list[dict[str, int | str | None]]]],
) -> None:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = header
    expected: list[dict[str, object]] = []
    for entity_id, trip_id, stamp, stops in updates:
        entity = feed.entity.add()
        entity.id = entity_id
        update = entity.trip_update
        update.trip.SetInParent()
        trip: dict[str, object] = {
            "entity_id": entity_id,
            "observed_at": datetime.fromtimestamp(header if stamp is None else stamp, UTC),
        }
        if trip_id is not None:
            update.trip.trip_id = trip_id
            trip["trip_id"] = trip_id
        if stamp is not None:
            update.timestamp = stamp
        if not stops:
            expected.append({**trip, "stop_update": 0})
        for position, stop in enumerate(stops, start=1):
            message = update.stop_time_update.add()
            row: dict[str, object] = {**trip, "stop_update": position}
            for key, value in stop.items():
                if value is None:
                    continue
                if key == "arrival_time":
                    message.arrival.time = int(value)
                    row[key] = datetime.fromtimestamp(int(value), UTC)
                elif key == "arrival_delay":
                    message.arrival.delay = int(value)
                    row[key] = value
                else:
                    setattr(message, key, value)
                    row[key] = value
            expected.append(row)

    parsed = _outcome("trip-updates", feed.SerializeToString())

    assert parsed is not None
    assert parsed.rows == expected


_ALERTS = st.lists(
    st.tuples(
        _TEXT,
        st.none() | st.sampled_from(list(gtfs_realtime_pb2.Alert.Cause.keys())),
        st.none() | _TEXT,
        st.lists(st.tuples(st.none() | _TEXT, st.none() | _TEXT), min_size=1, max_size=3),
    ),
    max_size=4,
    unique_by=lambda alert: alert[0],
)


@CASES
@given(_SECONDS, _ALERTS)
def test_generated_alerts_read_back_to_their_values(
    header: int,
    alerts: list[tuple[str, str | None, str | None, list[tuple[str | None, str | None]]]],
) -> None:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = header
    expected: list[dict[str, object]] = []
    for alert_id, cause, header_text, selectors in alerts:
        entity = feed.entity.add()
        entity.id = alert_id
        alert = entity.alert
        common: dict[str, object] = {
            "alert_id": alert_id,
            "observed_at": datetime.fromtimestamp(header, UTC),
            "active_periods": 0,
        }
        if cause is not None:
            alert.cause = getattr(gtfs_realtime_pb2.Alert, cause)  # enum values live on Alert
            common["cause"] = cause
        if header_text is not None:
            alert.header_text.translation.add().text = header_text
            common.update(header_text=header_text, languages="-")
        for position, (route_id, stop_id) in enumerate(selectors, start=1):
            selector = alert.informed_entity.add()
            row = {**common, "informed_entity": position}
            if route_id is not None:
                selector.route_id = route_id
                row["route_id"] = route_id
            if stop_id is not None:
                selector.stop_id = stop_id
                row["stop_id"] = stop_id
            expected.append(row)

    parsed = _outcome("alerts", feed.SerializeToString())

    assert parsed is not None
    assert parsed.rows == expected
