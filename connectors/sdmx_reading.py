"""SDMX data messages read by sdmx1 (see connectors.sdmx): the flavour told from the content,
sdmx1 given the DSD it needs, and what it raises turned into PayloadError.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterable
from typing import Any

import sdmx.message
import sdmx.reader.csv
import sdmx.reader.json
import sdmx.reader.xml
from sdmx.model import common

from connectors.errors import PayloadError
from connectors.payload import ParsedPayload
from connectors.sdmx import NAME
from connectors.sdmx_csv import prepare_sdmx_csv
from connectors.sdmx_quiet import describe_error, quiet_sdmx
from connectors.sdmx_rows import SdmxRead, notes_of, rows_of
from connectors.sdmx_structure import infer_csv_structure, read_structure
from connectors.sdmx_xml import STRUCTURE, STRUCTURE_SPECIFIC, inspect_sdmx_ml
from domain.dataset import DatasetDefinition

SDMX_JSON = "SDMX-JSON"
SDMX_CSV = "SDMX-CSV"
UNKNOWN = "unknown"  # the structure of a message that names none

_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DATAFLOW_LINK = re.compile(r"/dataflow/([^/]+)/([^/]+)/([^/?#]+)/?(?:[?#].*)?$")
_MAX_NOTED = 5


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
    rows, tally = rows_of(read)
    return ParsedPayload(rows=rows, format=NAME, notes=notes_of(read, rows, tally, dataset))


def _read_xml(body: bytes, structure: bytes | None) -> SdmxRead:
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
    read = SdmxRead(message, facts.flavour, names)
    if UNKNOWN in names:
        read.notes.append("the message names no structure: structure 'unknown'")
    read.notes.extend([mismatch] if mismatch else [])
    read.notes.extend(_reader_notes(messages))
    return read


def _read_json(body: bytes, structure: bytes | None) -> SdmxRead:
    dsd = read_structure(structure, ()) if structure is not None else None
    message, messages = _convert(sdmx.reader.json.Reader(), body, SDMX_JSON)
    name = _json_dataflow(body) or (_name_of(dsd) if dsd is not None else UNKNOWN)
    read = SdmxRead(message, SDMX_JSON, [name] * len(message.data))
    if name == UNKNOWN:
        read.notes.append("the message names no dataflow and no DSD was given: structure 'unknown'")
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


def _read_csv(text: str, structure: bytes | None) -> SdmxRead:
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
    return SdmxRead(
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


def _name_of(structure: Any) -> str:
    """``AGENCY:ID(VERSION)`` of a DSD or dataflow, as far as it is known."""
    structure_id = getattr(structure, "id", None)
    if not structure_id or structure_id == common.MissingID:
        return UNKNOWN
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
    return structure_id.strip() or UNKNOWN


def _reader_notes(messages: Iterable[str]) -> list[str]:
    distinct = list(dict.fromkeys(m.splitlines()[0][:200] for m in messages if m))
    if not distinct:
        return []
    shown = "; ".join(distinct[:_MAX_NOTED])
    more = f" (and {len(distinct) - _MAX_NOTED} more)" if len(distinct) > _MAX_NOTED else ""
    return [f"sdmx1 reported: {shown}{more}"]
