"""GTFS-Realtime Alerts translated into one row per alert and informed entity.

A row is keyed by the alert's entity id (``alert_id``), the informed entity's position in the
alert (``informed_entity``, from 1) and the feed header's time (``observed_at``): the same alert
seen in a later feed is a new observation of it. An alert that informs no entity (the spec
requires at least one) is kept as one row with ``informed_entity`` 0 and counted in the notes.

Texts are given in one language per row: the translation without a language tag, else the
English one, else the first; ``languages`` lists every language the header (else the
description) was given in, and the notes count alerts whose other translations were not
kept. An alert may have several active periods: the row carries the one holding the feed's
time, else the next to come, else the last, and ``active_periods`` says how many there were
(0: active while in the feed).

With a static feed: route_short_name (routes.txt) and stop_name (stops.txt) are added, and
route_ids, stop_ids and trip_ids that match nothing are listed in the notes, as is whether the
static feed's service had ended by the time of the realtime feed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from google.transit import gtfs_realtime_pb2

from connectors.gtfs_feed import (
    decode_feed,
    entity_rows,
    enum_name,
    expiry_note,
    header_time,
    optional_text,
    text,
    unmatched_note,
    utc,
)
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload

FORMAT = "gtfs-realtime/alerts"
_PREFERRED_LANGUAGE = "en"

_Alert = gtfs_realtime_pb2.Alert


def parse_alerts(data: bytes, *, static: GtfsStatic | None = None) -> ParsedPayload:
    """One row per alert and informed entity."""
    return alerts_from_feed(decode_feed(data), static=static)


def alerts_from_feed(
    feed: gtfs_realtime_pb2.FeedMessage, *, static: GtfsStatic | None = None
) -> ParsedPayload:
    tally: Counter[str] = Counter()
    if header_time(feed) is None and any(entity.HasField("alert") for entity in feed.entity):
        tally["alerts came in a feed whose header has no timestamp (no observed_at)"] += 1
    return entity_rows(
        feed,
        kind="alert",
        label="alerts",
        make_rows=_rows,
        enrich=_enrich,
        static=static,
        format_name=FORMAT,
        tally=tally,
    )


def _rows(
    entity: gtfs_realtime_pb2.FeedEntity, feed_time: int | None, tally: Counter[str]
) -> list[dict[str, object]]:
    alert = entity.alert
    common: dict[str, object] = {}
    alert_id = text(entity.id, tally)
    if alert_id:
        common["alert_id"] = alert_id
    else:
        tally["entities had no id (their records lack the key field alert_id)"] += 1
    if feed_time is not None:
        common["observed_at"] = utc(feed_time, tally)
    common.update(_active_period(alert.active_period, feed_time, tally))
    for name, enum in (
        ("cause", _Alert.Cause),
        ("effect", _Alert.Effect),
        ("severity_level", _Alert.SeverityLevel),
    ):
        if alert.HasField(name):
            common[name] = enum_name(enum, getattr(alert, name))
    common.update(_texts(alert, tally))
    if not alert.informed_entity:
        tally["alerts informed no entity (one record each, informed_entity 0)"] += 1
        return [{**common, "informed_entity": 0}]
    return [
        {**common, "informed_entity": position, **_selector_fields(selector, tally)}
        for position, selector in enumerate(alert.informed_entity, start=1)
    ]


def _active_period(
    periods: Sequence[gtfs_realtime_pb2.TimeRange], feed_time: int | None, tally: Counter[str]
) -> dict[str, object]:
    fields: dict[str, object] = {"active_periods": len(periods)}
    if not periods:
        return fields
    chosen = periods[0]
    if feed_time is not None:
        current = [p for p in periods if _start(p) <= feed_time <= _end(p)]
        coming = sorted((p for p in periods if _start(p) > feed_time), key=_start)
        chosen = (current or coming or [periods[-1]])[0]
    if chosen.HasField("start"):
        fields["active_start"] = utc(chosen.start, tally)
    if chosen.HasField("end"):
        fields["active_end"] = utc(chosen.end, tally)
    return fields


def _start(period: gtfs_realtime_pb2.TimeRange) -> int:
    return period.start if period.HasField("start") else 0


def _end(period: gtfs_realtime_pb2.TimeRange) -> int:
    return period.end if period.HasField("end") else 2**64


def _texts(alert: gtfs_realtime_pb2.Alert, tally: Counter[str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    # The header's languages, else the description's: what the alert was written in.
    header = _translations(alert.header_text, tally) or _translations(alert.description_text, tally)
    language = _chosen_language(header)
    if header:
        fields["languages"] = ",".join(tag or "-" for tag, _ in header)
        if language is not None:
            fields["language"] = language
    if len(header) > 1:
        tally["alerts had translations in other languages, not kept"] += 1
    for name in ("header_text", "description_text", "url"):
        translations = _translations(getattr(alert, name), tally)
        chosen = _translation_in(translations, language)
        if chosen:
            fields[name] = chosen
    return fields


def _translations(
    value: gtfs_realtime_pb2.TranslatedString, tally: Counter[str]
) -> list[tuple[str, str]]:
    return [(text(t.language, tally), text(t.text, tally)) for t in value.translation]


def _chosen_language(translations: list[tuple[str, str]]) -> str | None:
    """The untagged translation's language (None), else English, else the first's."""
    tags = [tag for tag, _ in translations]
    if not tags or "" in tags:
        return None
    return _PREFERRED_LANGUAGE if _PREFERRED_LANGUAGE in tags else tags[0]


def _translation_in(translations: list[tuple[str, str]], language: str | None) -> str | None:
    wanted = language or ""
    for tag, value in translations:
        if tag == wanted:
            return value or None
    return (translations[0][1] or None) if translations else None


def _selector_fields(
    selector: gtfs_realtime_pb2.EntitySelector, tally: Counter[str]
) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name in ("agency_id", "route_id", "stop_id"):
        value = optional_text(selector, name, tally)
        if value is not None:
            fields[name] = value
    if selector.HasField("route_type"):
        fields["route_type"] = selector.route_type
    if selector.HasField("direction_id"):
        fields["direction_id"] = selector.direction_id
    if selector.HasField("trip"):
        trip = selector.trip
        trip_id = optional_text(trip, "trip_id", tally)
        if trip_id is not None:
            fields["trip_id"] = trip_id
        route_id = optional_text(trip, "route_id", tally)
        if route_id is not None and "route_id" not in fields:
            fields["route_id"] = route_id
        if trip.HasField("direction_id") and "direction_id" not in fields:
            fields["direction_id"] = trip.direction_id
    if not fields:
        tally["informed entities selected nothing (no agency, route, trip or stop)"] += 1
    return fields


def _enrich(rows: list[dict[str, object]], static: GtfsStatic, feed_time: int | None) -> list[str]:
    unmatched_routes: set[str] = set()
    unmatched_stops: set[str] = set()
    unmatched_trips: set[str] = set()
    for row in rows:
        route_id = row.get("route_id")
        if isinstance(route_id, str):
            short_name = static.route_short_names.get(route_id)
            if short_name is None:
                unmatched_routes.add(route_id)
            elif short_name:
                row["route_short_name"] = short_name
        stop_id = row.get("stop_id")
        if isinstance(stop_id, str):
            if stop_id not in static.stop_ids:
                unmatched_stops.add(stop_id)
            elif static.stop_names.get(stop_id):
                row["stop_name"] = static.stop_names[stop_id]
        trip_id = row.get("trip_id")
        if isinstance(trip_id, str) and static.has_trips and trip_id not in static.trip_routes:
            unmatched_trips.add(trip_id)
    notes = [
        unmatched_note("route_ids", unmatched_routes, "routes.txt"),
        unmatched_note("stop_ids", unmatched_stops, "stops.txt"),
    ]
    if static.has_trips:
        notes.append(unmatched_note("trip_ids", unmatched_trips, "trips.txt"))
    notes.append(expiry_note(static, feed_time))
    return notes
