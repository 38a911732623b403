"""SDMX-CSV made safe for sdmx1's reader, and the facts the rows need from it.

sdmx1 reads SDMX-CSV 2.0 only, splits the text on every kind of line break (so a quoted
cell holding one shifts the columns after it), asserts on an ACTION or STRUCTURE it does not
know and needs an ACTION column. So each record is checked here first: a record sdmx1 could
not read is set aside as an invalid row with its line number, and the rest is written out
again for sdmx1. SDMX-CSV 1.0 (a first column ``DATAFLOW``) is rewritten as 2.0.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from connectors.errors import PayloadError

_STRUCTURE_HEADER = re.compile(r"STRUCTURE(\[.\])?")
_STRUCTURE_KINDS = frozenset({"dataflow", "dataprovision", "datastructure"})
_ACTIONS = frozenset("ADIR")
# What str.splitlines() splits on besides "\n" and "\r".
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_BOM = "\ufeff"


@dataclass(slots=True)
class SdmxCsv:
    """A checked SDMX-CSV payload: what sdmx1 should read and what was set aside."""

    text: str
    delimiter: str
    header: list[str]
    # The STRUCTURE_ID of each data set sdmx1 will make, in the order it makes them.
    structure_ids: list[str] = field(default_factory=list)
    # (index in the payload's records, reason) for records set aside.
    invalid: list[tuple[int, str]] = field(default_factory=list)
    # Whether cells are "ID: label" (SDMX-CSV labels=both), whose labels are dropped.
    labelled: bool = False
    deleted: int = 0
    version: str = "2.0"


def prepare_sdmx_csv(text: str) -> SdmxCsv:
    """Check an SDMX-CSV payload record by record; PayloadError when its header is not one."""
    text = text.removeprefix(_BOM)
    first_line = text.split("\n", maxsplit=1)[0]
    version, delimiter = _version_and_delimiter(first_line)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(records)
        if version == "1.0":
            header = ["STRUCTURE", "STRUCTURE_ID", *header[1:]]
        if len(header) < 3:
            raise PayloadError(
                "not-sdmx",
                "line 1: an SDMX-CSV header names at least STRUCTURE, "
                "STRUCTURE_ID and one component",
            )
        has_action = "ACTION" in header[2:4]
        if not has_action:
            header = [*header[:2], "ACTION", *header[2:]]
        action_at = header.index("ACTION")
        labelled = any(": " in column for column in header[action_at + 1 :])
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        prepared = SdmxCsv("", delimiter, header, labelled=labelled, version=version)
        targets: dict[tuple[str, str, str], None] = {}
        for index, record in enumerate(records):
            if not record:
                continue
            cells = _as_version_2(record, version, has_action)
            problem = _problem(cells, header, action_at)
            if problem:
                prepared.invalid.append((index, f"line {records.line_num}: {problem}"))
                continue
            if cells[action_at] == "D":
                prepared.deleted += 1
                prepared.invalid.append(
                    (
                        index,
                        f"line {records.line_num}: ACTION D asks to delete the observation; "
                        "deletions are not taken as records",
                    )
                )
                continue
            if labelled:
                cells[action_at + 1 :] = [_code(c) for c in cells[action_at + 1 :]]
            writer.writerow(cells)
            targets.setdefault((cells[0], cells[1], cells[action_at]), None)
    except csv.Error as error:
        raise PayloadError("not-csv", f"line {records.line_num}: {error}") from None
    prepared.text = out.getvalue()
    prepared.structure_ids = [_code(structure_id) for _, structure_id, _ in targets]
    return prepared


def _version_and_delimiter(first_line: str) -> tuple[str, str]:
    if first_line.startswith("DATAFLOW") and len(first_line) > len("DATAFLOW"):
        return "1.0", first_line[len("DATAFLOW")]
    match = _STRUCTURE_HEADER.match(first_line)
    if match and len(first_line) > match.end():
        return "2.0", first_line[match.end()]
    raise PayloadError(
        "not-sdmx",
        "not SDMX-ML (XML), SDMX-JSON or SDMX-CSV: an SDMX-CSV header begins with "
        f"STRUCTURE (2.0) or DATAFLOW (1.0), this one with {first_line[:40]!r}",
    )


def _as_version_2(record: list[str], version: str, has_action: bool) -> list[str]:
    cells = ["dataflow", *record] if version == "1.0" else list(record)
    return cells if has_action else [*cells[:2], "I", *cells[2:]]


def _problem(cells: list[str], header: list[str], action_at: int) -> str | None:
    if len(cells) != len(header):
        return f"{len(cells)} cells but the header names {len(header)} columns"
    if cells[0] not in _STRUCTURE_KINDS:
        return f"STRUCTURE {cells[0][:40]!r} is not one of {sorted(_STRUCTURE_KINDS)}"
    if cells[action_at] not in _ACTIONS:
        return f"ACTION {cells[action_at][:40]!r} is not one of A, D, I, R"
    if any(_LINE_BREAKS.search(cell) for cell in cells):
        return "a cell holds a line break"
    return None


def _code(cell: str) -> str:
    """``A: Value A`` → ``A``; a cell without a label is kept whole."""
    return cell.split(": ", maxsplit=1)[0]
