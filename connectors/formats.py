"""The payload formats `baylink ingest` and the connector runner know, and how each is parsed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from connectors import (
    geojson,
    geoparquet,
    gtfs_realtime,
    indicators,
    sdmx,
    shapefile,
    tabular,
    td_detector,
    td_speedmap,
)
from connectors.errors import ConnectorError
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What a source declares beside its bytes.

    ``crs`` overrides the CRS the source or dataset declares (``EPSG:<code>`` or ``GCJ-02``);
    ``static_gtfs`` is the static feed realtime entities are joined with; ``source_name`` is
    the payload's file name, for formats whose parser needs it; ``structure`` is an SDMX-ML
    structure message holding the data structure definition (DSD) SDMX data is read by.
    """

    crs: str | None = None
    static_gtfs: GtfsStatic | None = None
    source_name: str | None = None
    structure: bytes | None = None


Parser = Callable[[bytes, DatasetDefinition, ParseOptions], ParsedPayload]


@dataclass(frozen=True, slots=True)
class Format:
    """A payload format: its name on the command line, the connector that reads it."""

    name: str
    connector: str
    version: str
    parse: Parser
    suffixes: tuple[str, ...] = ()


def _csv(data: bytes, dataset: DatasetDefinition, _options: ParseOptions) -> ParsedPayload:
    return tabular.parse_csv(data, dataset)


def _jsonl(data: bytes, dataset: DatasetDefinition, _options: ParseOptions) -> ParsedPayload:
    return tabular.parse_jsonl(data, dataset)


def _gtfs_rt(data: bytes, dataset: DatasetDefinition, options: ParseOptions) -> ParsedPayload:
    # The dataset's key fields pick VehiclePositions, TripUpdates or Alerts.
    return gtfs_realtime.parse_feed(data, dataset, static=options.static_gtfs)


def _td_speedmap(data: bytes, _dataset: DatasetDefinition, _options: ParseOptions) -> ParsedPayload:
    return td_speedmap.parse_speedmap(data)


def _td_detector(data: bytes, _dataset: DatasetDefinition, _options: ParseOptions) -> ParsedPayload:
    return td_detector.parse_detector(data)


def _sdmx(data: bytes, dataset: DatasetDefinition, options: ParseOptions) -> ParsedPayload:
    return sdmx.parse_sdmx(data, dataset, structure=options.structure)


def _indicator_csv(
    data: bytes, dataset: DatasetDefinition, _options: ParseOptions
) -> ParsedPayload:
    return indicators.parse_indicator_csv(data, dataset)


def _geojson(data: bytes, dataset: DatasetDefinition, options: ParseOptions) -> ParsedPayload:
    return geojson.parse_feature_collection(data, dataset, options.crs)


def _geoparquet(data: bytes, dataset: DatasetDefinition, options: ParseOptions) -> ParsedPayload:
    return geoparquet.parse_geoparquet(data, dataset, options.crs)


def _shapefile(data: bytes, dataset: DatasetDefinition, options: ParseOptions) -> ParsedPayload:
    return shapefile.parse_shapefile(data, dataset, options.crs)


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format("csv", tabular.NAME, tabular.VERSION, _csv, (".csv",)),
        Format("jsonl", tabular.NAME, tabular.VERSION, _jsonl, (".jsonl", ".ndjson")),
        Format("gtfs-rt", gtfs_realtime.NAME, gtfs_realtime.VERSION, _gtfs_rt, (".pb",)),
        # No suffix: ".xml" could as well be SDMX, so these need --format.
        Format("td-speedmap", td_speedmap.NAME, td_speedmap.VERSION, _td_speedmap),
        Format("td-detector", td_detector.NAME, td_detector.VERSION, _td_detector),
        # SDMX comes as .xml, .json or .csv, which say nothing of SDMX: --format sdmx picks it,
        # and the parser tells the flavour from the content.
        Format("sdmx", sdmx.NAME, sdmx.VERSION, _sdmx, (".sdmx.xml", ".sdmx.json", ".sdmx.csv")),
        Format("indicator-csv", indicators.NAME, indicators.VERSION, _indicator_csv),
        Format("geojson", geojson.NAME, geojson.VERSION, _geojson, (".geojson", ".geo.json")),
        Format(
            "geoparquet",
            geoparquet.NAME,
            geoparquet.VERSION,
            _geoparquet,
            (".geoparquet", ".geo.parquet"),
        ),
        Format("shapefile", shapefile.NAME, shapefile.VERSION, _shapefile, (".shp.zip", ".shp")),
    )
}


class UnknownFormatError(ConnectorError):
    """A format name that no connector reads, or a file name that says no format."""


def format_named(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormatError(
            f"unknown format {name!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def format_of(location: str) -> Format:
    """The format a path or URL's file name says, e.g. ``.csv``; the query string is ignored."""
    name = PurePosixPath(location.split("?", maxsplit=1)[0]).name.lower()
    # Longest suffix first, so ".geo.parquet" can win over ".parquet".
    by_length = sorted(
        ((suffix, fmt) for fmt in FORMATS.values() for suffix in fmt.suffixes),
        key=lambda item: -len(item[0]),
    )
    for suffix, fmt in by_length:
        if name.endswith(suffix):
            return fmt
    raise UnknownFormatError(
        f"cannot tell the format of {location!r} from its name; "
        f"pass --format ({', '.join(FORMATS)})"
    )
