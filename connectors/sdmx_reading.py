"""SDMX data messages read by sdmx1 and turned into rows (see connectors.sdmx).

sdmx1 reads the message; this module finds its flavour from the content, gives sdmx1 the
DSD it needs, and turns each observation into one row of the ``sdmx-observations`` dataset:
structure, series key and dimensions, time period and the UTC instant it starts, value,
unit, unit multiplier, decimals, observation status, every attribute, and the area, mapped
to a baylink region where it names one. An observation that cannot be turned into a row
becomes an invalid row naming it; only a payload that is no SDMX at all raises PayloadError.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sdmx.message
import sdmx.reader.csv
import sdmx.reader.json
import sdmx.reader.xml
from sdmx.model import common

from connectors.areas import area_in, region_of_area
from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY, REGION_KEY, ParsedPayload
from connectors.sdmx import NAME
from connectors.sdmx_csv import prepare_sdmx_csv
from connectors.sdmx_period import period_start
from connectors.sdmx_quiet import describe_error, quiet_sdmx
from connectors.sdmx_structure import infer_csv_structure, read_structure
from connectors.sdmx_xml import GENERIC, STRUCTURE, STRUCTURE_SPECIFIC, inspect_sdmx_ml
from domain.dataset import DatasetDefinition

SDMX_JSON = "SDMX-JSON"
SDMX_CSV = "SDMX-CSV"

_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+", re.ASCII)
_MISSING = frozenset({"", "nan", "na", "n/a", "-", ".."})
_TIME_IDS = frozenset({"TIME_PERIOD", "TIME"})
_UNKNOWN = "unknown"
_DATAFLOW_LINK = re.compile(r"/dataflow/([^/]+)/([^/]+)/([^/?#]+)/?(?:[?#].*)?$")
_MAX_NOTED = 5


@dataclass
class _Read:
    """A message as sdmx1 read it, and what the rows need to know beside it."""

    message: Any
    flavour: str
    structure_names: list[str]
    decimal_comma: bool = False
    notes: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    deleted: int = 0  # of the invalid rows, those asking for a deletion


@dataclass
class _Tally:
    missing_values: int = 0
    text_values: int = 0
    unread_periods: list[str] = field(default_factory=list)
    no_period: int = 0
    deleted: int = 0
    regions: Counter[str] = field(default_factory=Counter)


def read_sdmx_rows(
    data: bytes, dataset: DatasetDefinition, structure: bytes | None = None
) -> ParsedPayload:
    """What connectors.sdmx.parse_sdmx returns."""
    if data.startswith(_UTF16_BOMS):
        # lxml and json read UTF-16 with its byte order mark as it is; CSV is decoded here.
        text = _utf16_text(data)
        body, first = data, text.lstrip()[:1]
    else:
        body = data.removeprefix(_BOM).lstrip()
        text, first = None, body[:1].decode("latin-1")
    if not first:
        raise PayloadError("empty-payload", "the payload holds no data")
    if first == "<":
        read = _read_xml(body, structure)
    elif first == "{":
        read = _read_json(body, structure)
    else:
        read = _read_csv(_utf8_text(body) if text is None else text, structure)
    rows, tally = _rows(read)
    return ParsedPayload(rows=rows, format=NAME, notes=_notes(read, rows, tally, dataset))


def _read_xml(body: bytes, structure: bytes | None) -> _Read:
    facts = inspect_sdmx_ml(body)
    if facts.flavour == STRUCTURE:
        raise PayloadError(
            "structure-not-data",
            "this is an SDMX-ML structure message (a DSD or code lists), not data; "
            "give it with --structure beside the data it describes",
        )
    dsd = read_structure(structure, facts.structure_ids) if structure is not None else None
    if facts.flavour == STRUCTURE_SPECIFIC and dsd is None:
        cited = ", ".join(facts.structure_ids) or "named in its header"
        raise PayloadError(
            "structure-required",
            "structure-specific SDMX-ML cannot be read without its data structure "
            f"definition (DSD {cited}); pass the SDMX-ML structure message with --structure PATH",
        )
    mismatch = ""
    if dsd is not None and facts.structure_ids and dsd.id not in facts.structure_ids:
        mismatch = (
            f"the data cites {', '.join(facts.structure_ids)}; the structure given holds "
            f"{_name_of(dsd)}, which was used"
        )
    reader = sdmx.reader.xml.Reader()
    message, messages = _convert(reader, body, facts.flavour, mismatch, structure=dsd)
    names = [_name_of(getattr(ds, "structured_by", None)) for ds in message.data]
    read = _Read(message, facts.flavour, names)
    read.notes.extend([mismatch] if mismatch else [])
    read.notes.extend(_reader_notes(messages))
    return read


def _read_json(body: bytes, structure: bytes | None) -> _Read:
    dsd = read_structure(structure, ()) if structure is not None else None
    message, messages = _convert(sdmx.reader.json.Reader(), body, SDMX_JSON)
    name = _json_dataflow(body) or (_name_of(dsd) if dsd is not None else _UNKNOWN)
    read = _Read(message, SDMX_JSON, [name] * len(message.data))
    read.notes.extend(_reader_notes(messages))
    return read


def _utf8_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(
            "bad-encoding",
            f"not SDMX-ML or SDMX-JSON, and not UTF-8 SDMX-CSV: byte 0x{body[error.start]:02x} "
            f"at offset {error.start}",
        ) from None


def _utf16_text(data: bytes) -> str:
    try:
        return data.decode("utf-16").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise PayloadError(
            "bad-encoding",
            f"the payload begins with a UTF-16 byte order mark but is not UTF-16 at byte "
            f"offset {error.start}",
        ) from None


def _read_csv(text: str, structure: bytes | None) -> _Read:
    prepared = prepare_sdmx_csv(text)
    notes: list[str] = []
    if prepared.version == "1.0":
        notes.append("SDMX-CSV 1.0 (DATAFLOW column) was read as SDMX-CSV 2.0")
    first_id = prepared.structure_ids[0] if prepared.structure_ids else ""
    agency, structure_id = _agency_and_id(first_id)
    if structure is not None:
        dsd = read_structure(structure, [structure_id])
    else:
        inferred = infer_csv_structure(prepared.header, agency, structure_id)
        dsd = inferred.dsd
        notes.append(
            "no data structure definition given: the header was read as dimensions "
            f"{list(inferred.dimensions)}, attributes {list(inferred.attributes)} and "
            f"measures {list(inferred.measures)} (attributes by SDMX cross-domain concept "
            "names); pass --structure PATH to read it by its DSD"
        )
    measures = [m.id for m in dsd.measures]
    if len(measures) > 1:
        notes.append(
            f"the structure has several measures {measures}: sdmx1 reads one value per "
            "observation, the last measure column's"
        )
    message, messages = _convert(
        sdmx.reader.csv.Reader(),
        prepared.text.encode("utf-8"),
        SDMX_CSV,
        structure=dsd,
        delimiter=prepared.delimiter,
    )
    return _Read(
        message,
        SDMX_CSV,
        [_plain_id(s) for s in prepared.structure_ids],
        decimal_comma=prepared.delimiter != ",",
        notes=notes + _reader_notes(messages),
        invalid=prepared.invalid,
        deleted=prepared.deleted,
    )


def _convert(
    reader: Any, body: bytes, flavour: str, hint: str = "", **kwargs: Any
) -> tuple[Any, list[str]]:
    """sdmx1's message; PayloadError naming what it raised, with ``hint`` on what may be why."""
    try:
        with quiet_sdmx() as messages:
            message = reader.convert(io.BytesIO(body), **kwargs)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("not-sdmx", f"the {flavour} message is nested too deeply") from None
    except Exception as error:  # sdmx1 raises many kinds on malformed input
        why = f" ({hint})" if hint else ""
        raise PayloadError(
            "not-sdmx", f"the {flavour} message cannot be read: {describe_error(error)}{why}"
        ) from None
    if not isinstance(message, sdmx.message.DataMessage):
        raise PayloadError("not-sdmx", f"the {flavour} message holds no data")
    return message, messages


def _rows(read: _Read) -> tuple[list[dict[str, object]], _Tally]:
    tally = _Tally(deleted=read.deleted)
    rows: list[dict[str, object]] = [{INVALID_KEY: reason} for _, reason in read.invalid]
    for ds, name in zip(read.message.data, read.structure_names, strict=False):
        deleting = getattr(ds, "action", None) is common.ActionType.delete
        ds_attributes = _attribute_texts(getattr(ds, "attrib", {}) or {})
        # What a series' observations share is worked out once per series.
        series_facts: dict[int, _Series] = {}
        for number, obs in enumerate(ds.obs, start=1):
            if deleting:
                tally.deleted += 1
                rows.append(
                    {
                        INVALID_KEY: f"observation {number} of a data set with action Delete: "
                        "deletions are not taken as records"
                    }
                )
                continue
            try:
                series_key = obs.series_key
                series = series_facts.get(id(series_key))
                if series is None:
                    series = series_facts[id(series_key)] = _series(series_key, ds_attributes)
                rows.append(_row(obs, name, series, read.decimal_comma, tally))
            except Exception as error:  # one unreadable observation never stops the rest
                rows.append(
                    {INVALID_KEY: f"observation {number} of {name}: {describe_error(error)}"}
                )
    return rows, tally


@dataclass(frozen=True, slots=True)
class _Series:
    """The period (if the series key holds it), dimensions and attributes of one series."""

    period: str | None
    dimensions: dict[str, str]
    attributes: dict[str, str]
    key: str
    dimensions_json: str


def _series(series_key: Any, ds_attributes: Mapping[str, str]) -> _Series:
    period: str | None = None
    dimensions: dict[str, str] = {}
    attributes = dict(ds_attributes)
    if series_key is not None:
        period = _split_key(series_key.values.values(), dimensions)
        attributes.update(_attribute_texts(series_key.attrib))
    return _Series(period, dimensions, attributes, ".".join(dimensions.values()), _json(dimensions))


def _split_key(key_values: Iterable[Any], dimensions: dict[str, str]) -> str | None:
    """Adds each dimension's code to ``dimensions``; returns the time period, if one is there."""
    period: str | None = None
    for kv in key_values:
        code = _text(kv.value)
        if period is None and _is_time(kv):
            period = code
        else:
            dimensions[str(kv.id)] = code
    return period


def _row(
    obs: Any, structure: str, series: _Series, decimal_comma: bool, tally: _Tally
) -> dict[str, object]:
    period, dimensions = series.period, series.dimensions
    series_key, dimensions_json = series.key, series.dimensions_json
    own = obs.dimension.values.values() if obs.dimension is not None else ()
    if own:
        dimensions = dict(dimensions)
        period = _split_key(own, dimensions) or period
        if len(dimensions) != len(series.dimensions):  # flat data: the key is at observation
            series_key, dimensions_json = ".".join(dimensions.values()), _json(dimensions)
    attributes = series.attributes
    groups = getattr(obs, "group_keys", None)
    if obs.attached_attribute or groups:
        attributes = dict(attributes)
        for group_key in groups or ():
            attributes.update(_attribute_texts(group_key.attrib))
        attributes.update(_attribute_texts(obs.attached_attribute))
    start: object = None
    if period is None:
        tally.no_period += 1
    else:
        start = period_start(period)
        if start is None:
            tally.unread_periods.append(period)
            start = period  # kept as given: the worker rejects it, naming the value
    value = _number(obs.value, decimal_comma)
    if value is None:
        tally.missing_values += 1
    elif isinstance(value, str):
        tally.text_values += 1
    area = area_in(dimensions)
    row: dict[str, object] = {
        "structure": structure,
        "series_key": series_key,
        "dimensions": dimensions_json,
        "time_period": period,
        "period_start": start,
        "value": value,
        "unit": attributes.get("UNIT_MEASURE") or attributes.get("UNIT"),
        "unit_mult": _whole(attributes.get("UNIT_MULT")),
        "decimals": _whole(attributes.get("DECIMALS")),
        "obs_status": attributes.get("OBS_STATUS"),
        "attributes": _json(attributes) if attributes else None,
        "area": area,
    }
    region = region_of_area(area) if area else None
    if region is not None:
        row[REGION_KEY] = region
        tally.regions[f"{area}→{region}"] += 1
    return row


def _is_time(kv: Any) -> bool:
    return isinstance(kv.value_for, common.TimeDimension) or str(kv.id) in _TIME_IDS


def _text(value: object) -> str:
    """A code, a plain value or sdmx1's list of values (SDMX-CSV ``ATTR[]``) as text."""
    if isinstance(value, common.Item):
        return str(value.id)
    if isinstance(value, list | tuple):
        return ";".join(text for text in map(_text, value) if text)
    if isinstance(value, common.InternationalString):
        return str(value.localized_default())
    return "" if value is None else str(value)


def _attribute_texts(attributes: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for attribute_id, attribute in attributes.items():
        value = getattr(attribute, "value", attribute)
        text = _text(value)
        if text:
            out[str(attribute_id)] = text
    return out


def _number(value: object, decimal_comma: bool) -> object:
    """The observation value as float64; None when missing (empty or NaN); else as given."""
    if value is None or isinstance(value, bool):
        return None if value is None else _text(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return str(value)
        return None if math.isnan(number) else number
    text = _text(value).strip()
    if text.lower() in _MISSING:
        return None
    if _NUMBER.fullmatch(text):
        return float(text)
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        return float(text.replace(",", "."))
    return text


def _whole(text: str | None) -> object:
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if re.fullmatch(r"[+-]?[0-9]{1,18}", stripped, re.ASCII) else text


def _json(mapping: Mapping[str, str]) -> str:
    return json.dumps(mapping, ensure_ascii=False, separators=(",", ":"))


def _name_of(structure: Any) -> str:
    """``AGENCY:ID(VERSION)`` of a DSD or dataflow, as far as it is known."""
    structure_id = getattr(structure, "id", None)
    if not structure_id or structure_id == common.MissingID:
        return _UNKNOWN
    maintainer = getattr(getattr(structure, "maintainer", None), "id", None)
    version = getattr(structure, "version", None)
    name = f"{maintainer}:{structure_id}" if maintainer else str(structure_id)
    return f"{name}({version})" if version else name


def _json_dataflow(body: bytes) -> str | None:
    """The dataflow an SDMX-JSON message links to, e.g. ``ECB:EXR(1.0)``."""
    try:
        links = json.loads(body)["structure"]["links"]
        for link in links:
            match = _DATAFLOW_LINK.search(str(link.get("href", "")))
            if link.get("rel") == "dataflow" and match:
                return f"{match[1]}:{match[2]}({match[3]})"
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    return None


def _agency_and_id(structure_id: str) -> tuple[str, str]:
    """``ESTAT:NA_MAIN(1.6.0)`` → (``ESTAT``, ``NA_MAIN``)."""
    agency, _, rest = structure_id.rpartition(":")
    return agency, rest.split("(", maxsplit=1)[0]


def _plain_id(structure_id: str) -> str:
    return structure_id.strip() or _UNKNOWN


def _reader_notes(messages: Iterable[str]) -> list[str]:
    distinct = list(dict.fromkeys(m.splitlines()[0][:200] for m in messages if m))
    if not distinct:
        return []
    shown = "; ".join(distinct[:_MAX_NOTED])
    more = f" (and {len(distinct) - _MAX_NOTED} more)" if len(distinct) > _MAX_NOTED else ""
    return [f"sdmx1 reported: {shown}{more}"]


def _notes(
    read: _Read, rows: list[dict[str, object]], tally: _Tally, dataset: DatasetDefinition
) -> tuple[str, ...]:
    names = sorted(set(read.structure_names))
    notes = [f"read as {read.flavour}" + (f" (structure {', '.join(names)})" if names else "")]
    notes.extend(read.notes)
    if read.flavour in (GENERIC, SDMX_JSON) and _UNKNOWN in names:
        notes.append("the message names no structure and none was given: structure 'unknown'")
    invalid = sum(1 for row in rows if INVALID_KEY in row) - tally.deleted
    if invalid:
        notes.append(f"{invalid} observations could not be read and are passed on as invalid")
    if tally.deleted:
        notes.append(
            f"{tally.deleted} observations marked for deletion are passed on as invalid: "
            "deletions are not taken as records"
        )
    if tally.missing_values:
        notes.append(
            f"{tally.missing_values} observations have no value (empty or NaN) and are kept "
            "with value missing, beside their OBS_STATUS"
        )
    if tally.text_values:
        notes.append(f"{tally.text_values} values are not numbers and were kept as text")
    if tally.unread_periods:
        examples = ", ".join(repr(p) for p in dict.fromkeys(tally.unread_periods[:_MAX_NOTED]))
        notes.append(
            f"{len(tally.unread_periods)} time periods are not periods this reads "
            f"(e.g. {examples}); kept as given in period_start"
        )
    if tally.no_period:
        notes.append(f"{tally.no_period} observations have no time period")
    if tally.regions:
        mapped = ", ".join(f"{k} ({n})" for k, n in sorted(tally.regions.items()))
        notes.append(f"areas mapped to regions: {mapped}")
    expected = {*dataset.field_names, REGION_KEY, INVALID_KEY}
    unknown = sorted({k for row in rows for k in row} - expected)
    if unknown:
        notes.append(f"rows carry fields not in {dataset.id!r}: {unknown}")
    if not rows:
        notes.append("the payload holds no observations")
    return tuple(notes)
