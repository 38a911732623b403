"""The little of a static GTFS feed that enriches realtime rows: routes, stops, trips, end date."""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from connectors.errors import PayloadError

# A static feed's routes.txt and stops.txt are kilobytes to a few megabytes; refuse members
# that claim far more, so a hostile zip cannot inflate into memory.
MAX_MEMBER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GtfsStatic:
    """Route short names by route_id, the known stop_ids, and the last day of service.

    ``stop_names`` and ``trip_routes`` (route_id by trip_id) are empty when the feed lacks
    them; ``has_trips`` says whether it had a trips.txt at all.
    """

    route_short_names: Mapping[str, str]
    stop_ids: frozenset[str]
    service_end: date | None = None
    stop_names: Mapping[str, str] = field(default_factory=dict)
    trip_routes: Mapping[str, str] = field(default_factory=dict)
    has_trips: bool = False

    @classmethod
    def from_zip(cls, data: bytes) -> GtfsStatic:
        """Read routes.txt, stops.txt, trips.txt if present and the end of service (feed_info,
        else calendar files)."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError) as error:
            raise PayloadError("not-zip", f"static GTFS is not a zip file: {error}") from None
        with archive:
            routes = {
                row["route_id"]: row.get("route_short_name") or ""
                for row in _rows(archive, "routes.txt", required=True)
                if row.get("route_id")
            }
            stop_names = {
                row["stop_id"]: row.get("stop_name") or ""
                for row in _rows(archive, "stops.txt", required=True)
                if row.get("stop_id")
            }
            has_trips = "trips.txt" in archive.namelist()
            trip_routes = {
                row["trip_id"]: row.get("route_id") or ""
                for row in _rows(archive, "trips.txt")
                if row.get("trip_id")
            }
            return cls(
                routes,
                frozenset(stop_names),
                _service_end(archive),
                stop_names,
                trip_routes,
                has_trips,
            )


def _service_end(archive: zipfile.ZipFile) -> date | None:
    """feed_info's feed_end_date when given; otherwise the last date calendar files mention."""
    for row in _rows(archive, "feed_info.txt"):
        end = _gtfs_date(row.get("feed_end_date"))
        if end is not None:
            return end
    ends = [_gtfs_date(row.get("end_date")) for row in _rows(archive, "calendar.txt")]
    ends += [
        _gtfs_date(row.get("date"))
        for row in _rows(archive, "calendar_dates.txt")
        if (row.get("exception_type") or "").strip() == "1"  # 1 = service added that day
    ]
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def _gtfs_date(text: str | None) -> date | None:
    try:
        return datetime.strptime((text or "").strip(), "%Y%m%d").date()
    except ValueError:
        return None


def _rows(
    archive: zipfile.ZipFile, name: str, *, required: bool = False
) -> Iterator[dict[str, str]]:
    try:
        info = archive.getinfo(name)
    except KeyError:
        if required:
            raise PayloadError("missing-file", f"static GTFS has no {name}") from None
        return
    if info.file_size > MAX_MEMBER_BYTES:
        raise PayloadError(
            "too-large", f"static GTFS {name} is {info.file_size} bytes; limit {MAX_MEMBER_BYTES}"
        )
    try:
        raw = archive.read(info)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PayloadError(
            "bad-encoding", f"static GTFS {name} is not UTF-8 at byte offset {error.start}"
        ) from None
    # Corrupt, encrypted or oddly compressed members each fail differently.
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        zlib.error,
        RuntimeError,
        NotImplementedError,
    ) as error:
        raise PayloadError("not-zip", f"static GTFS {name} cannot be unpacked: {error}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            # Real feeds pad names and values with spaces; restkey/restval are not str.
            yield {
                key.strip(): value.strip()
                for key, value in row.items()
                if isinstance(key, str) and isinstance(value, str)
            }
    except csv.Error as error:
        raise PayloadError(
            "not-csv", f"static GTFS {name} line {reader.line_num}: {error}"
        ) from None
