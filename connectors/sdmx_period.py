"""When an SDMX time period starts, as a UTC instant.

SDMX periods are calendar periods (``2010``, ``2010-Q3``, ``2010-08``, ``2010-W05``,
``2010-08-31``); they name no time zone, so a period is taken to start at 00:00 UTC of its
first day. A date-time with an offset is converted to UTC; one without an offset is not
guessed and does not read. Reporting periods (SDMX 2.1 ``2010-A1``, ``2010-S2``, ``2010-T1``,
``2010-D032``) read as calendar periods, i.e. with a reporting year that starts on 1 January.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

_YEAR = r"(?P<year>[0-9]{4})"
# IMF and Eurostat also write "2010Q3" and "2010M08" without the dash.
_SEP = r"-?"


def _start(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def _annual(m: re.Match[str]) -> datetime | None:
    return _start(int(m["year"]))


def _in_year(per_year: int, months: int) -> Callable[[re.Match[str]], datetime | None]:
    """Periods numbered 1..per_year, each ``months`` long (semesters, trimesters, quarters)."""

    def start(m: re.Match[str]) -> datetime | None:
        number = int(m["n"])
        if not 1 <= number <= per_year:
            return None
        return _start(int(m["year"]), (number - 1) * months + 1)

    return start


def _monthly(m: re.Match[str]) -> datetime | None:
    month = int(m["month"])
    return _start(int(m["year"]), month) if 1 <= month <= 12 else None


def _weekly(m: re.Match[str]) -> datetime | None:
    try:
        day = date.fromisocalendar(int(m["year"]), int(m["week"]), 1)
    except ValueError:
        return None
    return _start(day.year, day.month, day.day)


def _daily(m: re.Match[str]) -> datetime | None:
    try:
        return _start(int(m["year"]), int(m["month"]), int(m["day"]))
    except ValueError:
        return None


def _day_of_year(m: re.Match[str]) -> datetime | None:
    year, number = int(m["year"]), int(m["n"])
    moment = _start(year) + timedelta(days=number - 1)
    return moment if number >= 1 and moment.year == year else None


def _date_time(m: re.Match[str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(m[0])
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.astimezone(UTC)


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], datetime | None]], ...] = tuple(
    (re.compile(pattern, re.ASCII), reader)
    for pattern, reader in (
        (_YEAR, _annual),
        (_YEAR + r"-?A1", _annual),
        (_YEAR + _SEP + r"S(?P<n>[0-9])", _in_year(2, 6)),
        (_YEAR + _SEP + r"T(?P<n>[0-9])", _in_year(3, 4)),
        (_YEAR + _SEP + r"Q(?P<n>[0-9])", _in_year(4, 3)),
        (_YEAR + r"-(?P<month>[0-9]{2})", _monthly),
        (_YEAR + _SEP + r"M(?P<month>[0-9]{2})", _monthly),
        (_YEAR + _SEP + r"W(?P<week>[0-9]{2})", _weekly),
        (_YEAR + r"-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})", _daily),
        (_YEAR + _SEP + r"D(?P<n>[0-9]{3})", _day_of_year),
        (
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
            r"(Z|[+-][0-9]{2}:[0-9]{2})?",
            _date_time,
        ),
    )
)


def period_start(period: str) -> datetime | None:
    """The UTC instant ``period`` starts at, or None when it is not a period this reads.

    A time range (``2010-01-01/P1M``, SDMX's ``ObservationalTimePeriod``) starts where its
    first part does.
    """
    text = period.strip().split("/", maxsplit=1)[0]
    for pattern, reader in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return reader(match)
    return None
