"""CSV and JSON-lines payloads translated into rows of a dataset's fields.

A cell that cannot be converted to its field's type is kept as it was written, and unknown
columns are kept too: the ingest worker rejects such records one by one, naming the field.
Only a payload that cannot be read at all raises PayloadError.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY, REGION_KEY, ParsedPayload
from domain.dataset import DatasetDefinition, FieldType

NAME = "tabular"
VERSION = "1"

_BOM = b"\xef\xbb\xbf"
# ASCII digits only: int()/float() also accept "1_000" and non-Latin digits, which no
# data office means in a CSV cell.
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)",
    re.ASCII | re.IGNORECASE,
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})
_EXPECTED_EXTRA = frozenset({REGION_KEY, INVALID_KEY})


def parse_csv(data: bytes, dataset: DatasetDefinition) -> ParsedPayload:
    """Read UTF-8 CSV with a header row; each cell converted by its field's type."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PayloadError("empty-payload", "the CSV payload has no header row")
        columns = _check_header(header, dataset)
        types = [_field_type(dataset, name) for name in columns]
        rows: list[dict[str, object]] = []
        kept = 0
        for cells in reader:
            if not cells:  # csv yields [] for a blank line
                continue
            if len(cells) != len(columns):
                message = (
                    f"line {reader.line_num}: {len(cells)} cells but the header names "
                    f"{len(columns)} columns"
                )
                rows.append({INVALID_KEY: message})
                continue
            row: dict[str, object] = {}
            for name, ftype, cell in zip(columns, types, cells, strict=True):
                value = _convert_cell(cell, ftype)
                if isinstance(value, str) and ftype not in (None, FieldType.STRING):
                    kept += 1
                row[name] = value
            rows.append(row)
    except csv.Error as error:
        raise PayloadError("not-csv", f"line {reader.line_num}: {error}") from None
    kept_note = f"{kept} cells did not convert to their field's type and were kept as text"
    notes = _notes(rows, columns, dataset, kept_note if kept else None)
    return ParsedPayload(rows=rows, format="csv", notes=notes)


def parse_jsonl(data: bytes, dataset: DatasetDefinition) -> ParsedPayload:
    """Read one JSON object per line; blank lines skipped, a non-JSON line becomes one bad row."""
    text = _decode(data)
    rows: list[dict[str, object]] = []
    kept = 0
    seen: set[str] = set()
    # Split on "\n" only: str.splitlines() would also break on U+2028 etc., which JSON
    # strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as error:
            # ValueError covers JSONDecodeError and over-long integers; RecursionError deep nesting.
            rows.append({INVALID_KEY: f"line {number}: not JSON ({_short(error)})"})
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            rows.append({INVALID_KEY: f"line {number}: expected a JSON object, got {kind}"})
            continue
        row: dict[str, object] = {}
        for name, raw in value.items():
            ftype = _field_type(dataset, name)
            converted = _convert_json(raw, ftype)
            if ftype is FieldType.TIMESTAMP and isinstance(converted, str):
                kept += 1
            row[name] = converted
        seen.update(row)
        rows.append(row)
    kept_note = f"{kept} timestamps were not ISO 8601 with an offset and were kept as text"
    notes = _notes(rows, sorted(seen), dataset, kept_note if kept else None)
    return ParsedPayload(rows=rows, format="jsonl", notes=notes)


def _decode(data: bytes) -> str:
    """UTF-8 with or without a BOM; a byte that is not UTF-8 fails the whole payload."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        line = data.count(b"\n", 0, offset) + 1
        raise PayloadError(
            "bad-encoding",
            f"not UTF-8 at byte offset {offset} (line {line}): byte 0x{data[offset]:02x}",
        ) from None
    if not text.strip():
        raise PayloadError("empty-payload", "the payload holds no data")
    return text


def _check_header(header: list[str], dataset: DatasetDefinition) -> list[str]:
    for index, name in enumerate(header, start=1):
        if not name:
            raise PayloadError("bad-header", f"line 1: column {index} of the header has no name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise PayloadError("bad-header", f"line 1: header repeats columns {duplicates}")
    if not any(dataset.has_field(name) for name in header):
        raise PayloadError(
            "missing-header",
            f"line 1 names none of the fields of {dataset.id!r}; a header row is required "
            f"(expected names such as {list(dataset.field_names[:3])})",
        )
    return header


def _field_type(dataset: DatasetDefinition, name: str) -> FieldType | None:
    return dataset.field(name).type if dataset.has_field(name) else None


def _convert_cell(cell: str, ftype: FieldType | None) -> object:
    """The cell as its field's type; None when empty; the text itself when it will not convert."""
    if cell == "":
        return None
    if ftype is None or ftype is FieldType.STRING:
        return cell  # text is kept exactly, spaces included
    text = cell.strip()
    if not text:
        return None  # a padded blank in a typed column is a missing value, not bad data
    converted = _CONVERTERS[ftype](text)
    return cell if converted is None else converted


def _to_int(text: str) -> object:
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _to_float(text: str) -> object:
    # NaN and infinities pass through as floats: the worker rejects them with the field name.
    return float(text) if _FLOAT.fullmatch(text) else None


def _to_bool(text: str) -> object:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _to_timestamp(text: str) -> object:
    """An ISO 8601 time with an offset or Z, in UTC; a naive time is not guessed to be UTC."""
    try:
        value = datetime.fromisoformat(text)
        return None if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_CONVERTERS: dict[FieldType, Callable[[str], object]] = {
    FieldType.INT64: _to_int,
    FieldType.FLOAT64: _to_float,
    FieldType.BOOL: _to_bool,
    FieldType.TIMESTAMP: _to_timestamp,
}


def _convert_json(raw: object, ftype: FieldType | None) -> object:
    if ftype is FieldType.TIMESTAMP and isinstance(raw, str):
        converted = _to_timestamp(raw.strip())
        return raw if converted is None else converted
    if ftype is FieldType.FLOAT64 and isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError:
            return raw
    return raw


def _notes(
    rows: list[dict[str, object]],
    columns: list[str],
    dataset: DatasetDefinition,
    kept_note: str | None,
) -> tuple[str, ...]:
    notes: list[str] = []
    invalid = sum(1 for row in rows if INVALID_KEY in row)
    if invalid:
        notes.append(f"{invalid} records could not be read and are passed on as invalid")
    if kept_note:
        notes.append(kept_note)
    # "region" is the one extra key a row may carry on purpose (see connectors.payload).
    unknown = [n for n in columns if not dataset.has_field(n) and n not in _EXPECTED_EXTRA]
    if unknown:
        notes.append(f"columns not in {dataset.id!r} were kept: {unknown}")
    if not rows:
        notes.append("the payload holds no records")
    return tuple(notes)


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
