"""Reading the Hong Kong Transport Department's XML feeds safely, and their values.

The feeds are parsed with defusedxml: a document type declaration, entity declaration or
external reference is refused with a PayloadError (``unsafe-xml``), so no payload can expand
entities or make the parser fetch anything. Element names are matched without their
namespace: the speed map declares ``http://data.one.gov.hk/td``, the detector feed none.

Times in the feeds are Hong Kong local time without an offset; they are read in
Asia/Hong_Kong and handed on in UTC.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import errors as expat_errors
from zoneinfo import ZoneInfo

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connectors.errors import PayloadError

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
# expat's errors for a document that ends too soon: a download cut short ends in one of these.
_CUT_SHORT = frozenset(
    expat_errors.codes[message]
    for message in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
        expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_YES, _NO = frozenset({"Y", "YES", "TRUE", "1"}), frozenset({"N", "NO", "FALSE", "0"})


def read_xml(data: bytes, root: str, feed: str) -> Element:
    """The document element of ``data``, which must be named ``root``; else a PayloadError."""
    if not data.strip():
        raise PayloadError("empty-payload", f"the {feed} payload is empty")
    try:
        element = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise PayloadError(
            "unsafe-xml",
            f"the {feed} XML declares a DTD, an entity or an external reference, "
            f"which are refused: {error}",
        ) from None
    except ParseError as error:
        line, column = error.position
        if error.code in _CUT_SHORT:
            raise PayloadError(
                "truncated-xml",
                f"the {feed} XML ends before its elements are closed, at line {line} "
                f"column {column}: {error}",
            ) from None
        message = f"the {feed} payload is not well-formed XML: {error}"
        raise PayloadError("bad-xml", message) from None
    except LookupError as error:
        message = f"the {feed} XML declares an encoding Python does not know: {error}"
        raise PayloadError("bad-encoding", message) from None
    except (ValueError, RecursionError) as error:
        # expat refuses some encodings and nesting it cannot track with these.
        message = f"the {feed} payload cannot be read as XML: {error}"
        raise PayloadError("bad-xml", message) from None
    if local_name(element.tag) != root:
        raise PayloadError(
            "wrong-document",
            f"expected a {feed} document <{root}>, got <{local_name(element.tag)}>",
        )
    return element


def local_name(tag: object) -> str:
    """``{namespace}name`` → ``name``; comments and processing instructions have no name."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children_by_name(element: Element) -> dict[str, list[Element]]:
    named: dict[str, list[Element]] = {}
    for child in element:
        name = local_name(child.tag)
        if name:
            named.setdefault(name, []).append(child)
    return named


def leaf_text(element: Element) -> str | None:
    """The element's text, stripped; None when it is empty (a missing value, not zero)."""
    value = (element.text or "").strip()
    return value or None


def as_text(value: str) -> object:
    return value


def timestamp(value: str) -> object:
    """A Hong Kong local time as UTC; the text itself when it is not a time."""
    return hong_kong_datetime(value) or value


def number(value: str) -> object:
    """A decimal as float; the text itself when it is not one, for the worker to reject."""
    return float(value) if _NUMBER.fullmatch(value) else value


def whole(value: str) -> object:
    """A whole number as int; the text itself when it is not one (or not 64-bit)."""
    if not _WHOLE.fullmatch(value):
        return value
    parsed = int(value)
    return parsed if _INT64_MIN <= parsed <= _INT64_MAX else value


def flag(value: str) -> object:
    """Y/N as a bool; other text is kept."""
    upper = value.upper()
    if upper in _YES:
        return True
    if upper in _NO:
        return False
    return value


def hong_kong_datetime(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS`` (or with a space) in Hong Kong time, as UTC; None if not one.

    A time that states its own offset keeps it; a date alone is not taken for midnight.
    """
    if len(value) <= len("YYYY-MM-DD"):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HONG_KONG)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def iso_date(value: str) -> date | None:
    """``YYYY-MM-DD`` as a date; None if it is not one."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def iso_time_of_day(value: str) -> time | None:
    """``HH:MM:SS`` without an offset as a time; None if it is not one."""
    try:
        moment = time.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


def at_hong_kong(day: date, moment: time, *, next_day: bool = False) -> datetime | None:
    """``day`` at ``moment`` in Hong Kong (the day after with ``next_day``), in UTC."""
    try:
        local = datetime.combine(day, moment, HONG_KONG)
        if next_day:
            local += timedelta(days=1)
        return local.astimezone(UTC)
    except OverflowError:
        return None


Converter = Callable[[str], object]


def read_leaves(
    element: Element,
    fields: Mapping[str, tuple[str, Converter]],
    where: str,
    tally: Counter[str],
    containers: frozenset[str] = frozenset(),
) -> tuple[dict[str, object], str | None]:
    """The text children named in ``fields`` as {field: converted value}, and a problem.

    The problem (for the worker to reject the item with) is an element given twice or holding
    elements instead of text. Children named in ``containers`` are left to the caller; any
    other child is counted in ``tally`` and ignored. An empty element is a missing value, and
    counted too.
    """
    values: dict[str, object] = {}
    for name, children in children_by_name(element).items():
        if name in containers:
            continue
        if name not in fields:
            parent = local_name(element.tag)
            tally[f"<{name}> elements in <{parent}> were not expected, ignored"] += 1
            continue
        if len(children) > 1:
            return values, f"{where}: <{name}> is given {len(children)} times"
        if len(children[0]):
            return values, f"{where}: <{name}> holds elements, not a value"
        value = leaf_text(children[0])
        if value is None:
            tally[f"<{name}> elements were empty (passed on as missing values)"] += 1
        else:
            field, convert = fields[name]
            converted = convert(value)
            if convert is not as_text and isinstance(converted, str):
                tally[f"<{name}> values could not be read (kept as text for rejection)"] += 1
            values[field] = converted
    return values, None


def notes_of(tally: Counter[str]) -> list[str]:
    return [f"{count} {what}" for what, count in sorted(tally.items())]
