"""Properties of the SDMX and indicator-table parsers, whatever arrives.

Each parser meets random bytes, real specimens damaged by truncation, splices, byte flips and
dropped elements, and generated valid input whose records are known: it keeps the parser
contract (tests/support/parser_contract.py): a PayloadError with a reason, or rows the ingest
worker accepts or rejects one by one, each with a reason.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.datasets import INDICATOR_OBSERVATIONS, SDMX_OBSERVATIONS, load
from connectors.indicators import parse_indicator_csv
from connectors.payload import REGION_KEY
from connectors.sdmx import parse_sdmx
from connectors.sdmx_period import period_start
from domain.record import RecordValidator
from domain.region import RegionRegistry
from tests.support.parser_contract import check_parser_contract

SDMX = Path(__file__).resolve().parents[2] / "fixtures" / "sdmx"
SDMX_DATASET = load(SDMX_OBSERVATIONS)
INDICATORS = load(INDICATOR_OBSERVATIONS)
REGIONS = RegionRegistry.default()
NOW = datetime(2026, 1, 1, tzinfo=UTC)
GENERIC = (SDMX / "ng-ts.xml").read_bytes()
SPECIFIC = (SDMX / "ng-ts-ss.xml").read_bytes()
DSD = (SDMX / "ng-structure.xml").read_bytes()
JSON = (SDMX / "ts.json").read_bytes()
SDMX_CSV = (SDMX / "ecb-exr-ng.csv").read_bytes()
INDICATOR_TABLE = (
    b"indicator,area,period,value,unit\n"
    b"GDP,HK,2019,2.8e12,HKD\n"
    b"GDP,MO,2019-Q1,4.4e11,MOP\n"
    b"CPI,CN-GD,2019-08,101.2,index\n"
)
CASES = settings(max_examples=1000, deadline=None)


def _check_sdmx(data: bytes, structure: bytes | None = None) -> None:
    check_parser_contract(lambda: parse_sdmx(data, SDMX_DATASET, structure), SDMX_DATASET)


def _check_indicators(data: bytes) -> None:
    check_parser_contract(lambda: parse_indicator_csv(data, INDICATORS), INDICATORS)


_prefixes = st.sampled_from([b"", b"<", b"{", b"STRUCTURE,STRUCTURE_ID,ACTION,", b"DATAFLOW,"])


@CASES
@given(_prefixes, st.binary(max_size=512))
def test_sdmx_random_bytes_either_parse_or_raise_payload_error(prefix: bytes, data: bytes) -> None:
    _check_sdmx(prefix + data)


def _damaged(specimen: bytes) -> st.SearchStrategy[bytes]:
    """Truncated, spliced, or with a stretch (often an element) cut out."""
    size = len(specimen)
    positions = st.integers(min_value=0, max_value=size)
    truncated = positions.map(lambda end: specimen[:end])
    spliced = st.tuples(positions, st.integers(0, 64), st.binary(max_size=24)).map(
        lambda t: specimen[: t[0]] + t[2] + specimen[t[0] + t[1] :]
    )
    tag_starts = [i for i, byte in enumerate(specimen) if byte == ord("<")] or [0]
    dropped = st.tuples(st.sampled_from(tag_starts), st.sampled_from(tag_starts)).map(
        lambda t: specimen[: min(t)] + specimen[max(t) :]
    )
    flipped = st.tuples(st.integers(0, max(size - 1, 0)), st.integers(1, 255)).map(
        lambda t: specimen[: t[0]] + bytes([specimen[t[0]] ^ t[1]]) + specimen[t[0] + 1 :]
    )
    return st.one_of(truncated, spliced, dropped, flipped)


@CASES
@given(_damaged(GENERIC))
def test_damaged_generic_sdmx_ml_either_parses_or_raises_payload_error(data: bytes) -> None:
    _check_sdmx(data)


@CASES
@given(_damaged(SPECIFIC))
def test_damaged_structure_specific_sdmx_ml_either_parses_or_raises_payload_error(
    data: bytes,
) -> None:
    _check_sdmx(data, DSD)


@CASES
@given(_damaged(DSD))
def test_a_damaged_dsd_either_reads_the_data_or_raises_payload_error(structure: bytes) -> None:
    _check_sdmx(SPECIFIC, structure)


@CASES
@given(_damaged(JSON))
def test_damaged_sdmx_json_either_parses_or_raises_payload_error(data: bytes) -> None:
    _check_sdmx(data)


@CASES
@given(_damaged(SDMX_CSV))
def test_damaged_sdmx_csv_either_parses_or_raises_payload_error(data: bytes) -> None:
    _check_sdmx(data)


# Generated valid input, with the records it must give.

_codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=6)
_areas = st.sampled_from(["HK", "MO", "CN-GD", "440300", "CN", "US", "U2", "_X"])
_days = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))


@st.composite
def _periods(draw: st.DrawFn) -> tuple[str, datetime]:
    day = draw(_days)
    kind = draw(st.sampled_from(["A", "Q", "M", "D", "W"]))
    if kind == "A":
        return f"{day.year}", datetime(day.year, 1, 1, tzinfo=UTC)
    if kind == "Q":
        quarter = (day.month - 1) // 3 + 1
        return f"{day.year}-Q{quarter}", datetime(day.year, 3 * quarter - 2, 1, tzinfo=UTC)
    if kind == "M":
        return f"{day.year}-{day.month:02d}", datetime(day.year, day.month, 1, tzinfo=UTC)
    if kind == "W":
        year, week, _ = day.isocalendar()
        monday = date.fromisocalendar(year, week, 1)
        moment = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        return f"{year}-W{week:02d}", moment
    return day.isoformat(), datetime(day.year, day.month, day.day, tzinfo=UTC)


_values = st.floats(allow_nan=False, allow_infinity=False, width=64)
_observations = st.lists(
    st.tuples(_areas, _codes, _periods(), _values, st.sampled_from(["A", "E", "P"])),
    min_size=1,
    max_size=8,
    unique_by=lambda obs: (obs[0], obs[1], obs[2][0]),
)


@CASES
@given(_observations)
def test_generated_sdmx_csv_reads_back_to_its_observations(
    observations: list[tuple[str, str, tuple[str, datetime], float, str]],
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    header = ["STRUCTURE", "STRUCTURE_ID", "ACTION", "REF_AREA", "INDICATOR", "TIME_PERIOD"]
    writer.writerow([*header, "OBS_VALUE", "OBS_STATUS"])
    for area, indicator, (period, _), value, status in observations:
        cells = [area, indicator, period, repr(value), status]
        writer.writerow(["dataflow", "HK:TEST(1.0)", "I", *cells])

    parsed = parse_sdmx(out.getvalue().encode(), SDMX_DATASET)

    got = [(*_pick(row, *_OBSERVED), row.get(REGION_KEY)) for row in parsed.rows]
    expected = [
        (area, f"{area}.{indicator}", period, start, value, status, _region(area))
        for area, indicator, (period, start), value, status in observations
    ]
    assert got == expected
    batch = RecordValidator(SDMX_DATASET, REGIONS).validate(parsed.rows, "hk", NOW)
    assert batch.rejected == []


_OBSERVED = ("area", "series_key", "time_period", "period_start", "value", "obs_status")


def _pick(row: dict[str, object], *names: str) -> tuple[object, ...]:
    return tuple(row[name] for name in names)


def _region(area: str) -> str | None:
    return {"HK": "hk", "MO": "mo", "CN-GD": "gd", "440300": "gd-shenzhen"}.get(area)


@CASES
@given(_observations)
def test_generated_generic_sdmx_ml_reads_back_to_its_observations(
    observations: list[tuple[str, str, tuple[str, datetime], float, str]],
) -> None:
    series = "".join(
        f"<generic:Series><generic:SeriesKey>"
        f'<generic:Value id="REF_AREA" value="{area}"/>'
        f'<generic:Value id="INDICATOR" value="{indicator}"/>'
        f"</generic:SeriesKey><generic:Obs>"
        f'<generic:ObsDimension value="{period}"/><generic:ObsValue value="{value!r}"/>'
        f'<generic:Attributes><generic:Value id="OBS_STATUS" value="{status}"/>'
        f"</generic:Attributes>"
        f"</generic:Obs></generic:Series>"
        for area, indicator, (period, _), value, status in observations
    )
    head, tail = GENERIC.split(b"<generic:Series>", 1)[0], b"</message:DataSet>"
    data = head + series.encode() + tail + GENERIC.rsplit(tail, 1)[1]

    parsed = parse_sdmx(data, SDMX_DATASET)

    got = [_pick(row, *_OBSERVED) for row in parsed.rows]
    expected = [
        (area, f"{area}.{indicator}", period, start, value, status)
        for area, indicator, (period, start), value, status in observations
    ]
    assert got == expected


@CASES
@given(st.text(max_size=40), _periods())
def test_period_start_reads_periods_and_nothing_else_raises(
    text: str, period: tuple[str, datetime]
) -> None:
    start = period_start(text)
    assert start is None or start.utcoffset() == UTC.utcoffset(None)
    assert period_start(period[0]) == period[1]


@CASES
@given(_observations)
def test_generated_structure_specific_sdmx_ml_reads_back_to_its_observations(
    observations: list[tuple[str, str, tuple[str, datetime], float, str]],
) -> None:
    # The ECB DSD's dimensions, with the generated area and code in CURRENCY and EXR_TYPE.
    series = "".join(
        f'<Series FREQ="M" CURRENCY="{area}" CURRENCY_DENOM="EUR" EXR_TYPE="{code}" '
        f'EXR_VAR="E" UNIT_MEASURE="HKD"><Obs TIME_PERIOD="{period}" '
        f'OBS_VALUE="{value!r}" OBS_STATUS="{status}"/></Series>'
        for area, code, (period, _), value, status in observations
    )
    head = SPECIFIC.split(b"<Series ", 1)[0]
    tail = b"</message:DataSet>" + SPECIFIC.rsplit(b"</message:DataSet>", 1)[1]

    parsed = parse_sdmx(head + series.encode() + tail, SDMX_DATASET, DSD)

    got = [
        _pick(row, "series_key", "time_period", "period_start", "value", "obs_status", "unit")
        for row in parsed.rows
    ]
    expected = [
        (f"M.{area}.EUR.{code}.E", period, start, value, status, "HKD")
        for area, code, (period, start), value, status in observations
    ]
    assert got == expected


@CASES
@given(_observations)
def test_generated_sdmx_json_reads_back_to_its_observations(
    observations: list[tuple[str, str, tuple[str, datetime], float, str]],
) -> None:
    def component(component_id: str, items: list[str], **more: object) -> dict[str, object]:
        codes = [{"id": item, "name": item} for item in items]
        return {"id": component_id, "name": component_id, "values": codes, **more}

    areas = sorted({obs[0] for obs in observations})
    codes = sorted({obs[1] for obs in observations})
    periods = sorted({obs[2][0] for obs in observations})
    statuses = ["A", "E", "P"]
    series: dict[str, dict[str, dict[str, list[object]]]] = {}
    for area, code, (period, _), value, status in observations:
        cells = series.setdefault(f"{areas.index(area)}:{codes.index(code)}", {"observations": {}})
        cells["observations"][str(periods.index(period))] = [value, statuses.index(status)]
    message = {
        "header": {"id": "generated", "prepared": "2025-01-01T00:00:00Z", "sender": {"id": "HK"}},
        "structure": {
            "links": [{"href": "https://example.org/dataflow/HK/TEST/1.0", "rel": "dataflow"}],
            "dimensions": {
                "dataSet": [],
                "series": [
                    component("REF_AREA", areas, keyPosition=0),
                    component("INDICATOR", codes, keyPosition=1),
                ],
                "observation": [component("TIME_PERIOD", periods, role="TIME_PERIOD")],
            },
            "attributes": {
                "dataSet": [],
                "series": [],
                "observation": [component("OBS_STATUS", statuses)],
            },
        },
        "dataSets": [{"action": "Information", "series": series}],
    }

    parsed = parse_sdmx(json.dumps(message).encode(), SDMX_DATASET)

    got = sorted((*_pick(row, *_OBSERVED), row["structure"]) for row in parsed.rows)
    expected = sorted(
        (area, f"{area}.{code}", period, start, value, status, "HK:TEST(1.0)")
        for area, code, (period, start), value, status in observations
    )
    assert got == expected


# Indicator tables.


@CASES
@given(
    st.sampled_from([b"", b"indicator,area,period,value\n", b"indicator,2019,2020\n"]),
    st.binary(max_size=512),
)
def test_indicator_tables_of_random_bytes_either_parse_or_raise_payload_error(
    prefix: bytes, data: bytes
) -> None:
    _check_indicators(prefix + data)


@CASES
@given(_damaged(INDICATOR_TABLE))
def test_damaged_indicator_tables_either_parse_or_raise_payload_error(data: bytes) -> None:
    _check_indicators(data)


@CASES
@given(_observations, st.booleans())
def test_generated_indicator_tables_read_back_in_long_and_wide_form(
    observations: list[tuple[str, str, tuple[str, datetime], float, str]], wide: bool
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    if wide:
        periods = list(dict.fromkeys(period for _, _, (period, _), _, _ in observations))
        writer.writerow(["indicator", "area", *periods])
        cells: dict[tuple[str, str], dict[str, str]] = {}
        for area, indicator, (period, _), value, _ in observations:
            cells.setdefault((indicator, area), {})[period] = repr(value)
        for (indicator, area), by_period in cells.items():
            writer.writerow([indicator, area, *(by_period.get(p, "") for p in periods)])
    else:
        writer.writerow(["indicator", "area", "period", "value"])
        for area, indicator, (period, _), value, _ in observations:
            writer.writerow([indicator, area, period, repr(value)])

    parsed = parse_indicator_csv(out.getvalue().encode(), INDICATORS)

    names = ("indicator", "area", "time_period", "period_start", "value")
    got = sorted((*_pick(r, *names), r.get(REGION_KEY)) for r in parsed.rows)
    expected = sorted(
        (indicator, area, period, start, value, _region(area))
        for area, indicator, (period, start), value, _ in observations
    )
    assert got == expected
    batch = RecordValidator(INDICATORS, REGIONS).validate(parsed.rows, "hk", NOW)
    assert batch.rejected == []
