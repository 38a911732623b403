"""Indicator tables, long and wide, read into indicator-observations records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.datasets import INDICATOR_OBSERVATIONS, load
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named
from connectors.indicators import UNSPECIFIED_AREA, parse_indicator_csv
from connectors.payload import INVALID_KEY, REGION_KEY
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

INDICATORS = Path(__file__).resolve().parents[2] / "fixtures" / "indicators"
DATASET = load(INDICATOR_OBSERVATIONS)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _read(name: str) -> bytes:
    return (INDICATORS / name).read_bytes()


def test_a_long_table_gives_one_record_per_line() -> None:
    parsed = parse_indicator_csv(_read("ecb-usd-eur-monthly-long.csv"), DATASET)

    assert len(parsed.rows) == 24
    assert parsed.rows[0] == {
        "indicator": "EXR.M.USD.EUR.SP00.A",
        "area": "U2",
        "unit": "USD per EUR",
        "obs_status": None,
        "attributes": None,
        "time_period": "2018-01",
        "period_start": datetime(2018, 1, 1, tzinfo=UTC),
        "value": 1.21995,
    }
    assert parsed.notes == ("read as an indicator table in long form",)


def test_a_wide_table_gives_the_same_records_as_the_long_one() -> None:
    wide = parse_indicator_csv(_read("ecb-usd-eur-2019-wide.csv"), DATASET)
    long = parse_indicator_csv(_read("ecb-usd-eur-monthly-long.csv"), DATASET)

    assert wide.rows == [row for row in long.rows if str(row["time_period"]).startswith("2019")]
    assert wide.notes[0] == "read as an indicator table in wide (12 period columns) form"


def test_areas_naming_a_region_carry_it() -> None:
    table = b"indicator,area,period,value\nGDP,HK,2019,1\nGDP,Macao,2019,2\nGDP,CN-GD,2019,3\nGDP,CN,2019,4\n"  # noqa: E501
    rows = parse_indicator_csv(table, DATASET).rows

    assert [row.get(REGION_KEY) for row in rows] == ["hk", "mo", "gd", None]
    assert [row["area"] for row in rows] == ["HK", "Macao", "CN-GD", "CN"]


def test_a_table_without_an_area_says_the_area_is_unspecified() -> None:
    parsed = parse_indicator_csv(b"indicator,year,value\nGDP,2019,1\n", DATASET)

    assert parsed.rows[0]["area"] == UNSPECIFIED_AREA
    assert REGION_KEY not in parsed.rows[0]
    assert any("no area column" in note for note in parsed.notes)


def test_other_columns_are_kept_as_attributes() -> None:
    table = b"indicator;area;period;value;source;note\nGDP;HK;2019-Q2;1,5;C&SD;revised\n"
    row = parse_indicator_csv(table, DATASET).rows[0]

    assert json.loads(str(row["attributes"])) == {"source": "C&SD", "note": "revised"}
    assert row["value"] == "1,5"  # a comma is no decimal point here: kept, to be rejected


def test_missing_values_are_kept_missing_and_blank_wide_cells_are_no_observation() -> None:
    long = parse_indicator_csv(b"indicator,area,period,value\nGDP,HK,2019,..\n", DATASET)
    wide = parse_indicator_csv(b"indicator,area,2019,2020\nGDP,HK,,1\n", DATASET)

    assert long.rows[0]["value"] is None
    assert [row["time_period"] for row in wide.rows] == ["2020"]
    assert any("1 blank cells" in note for note in wide.notes)


def test_bad_lines_and_values_are_rejected_one_by_one_with_a_reason() -> None:
    table = (
        b"indicator,area,period,value\n"
        b"GDP,HK,2019,1\n"
        b"GDP,HK,2020\n"
        b"GDP,HK,2021-13,3\n"
        b"GDP,HK,2022,three\n"
        b'GDP,HK,2023,"1,234.5"\n'
    )
    parsed = parse_indicator_csv(table, DATASET)

    batch = RecordValidator(DATASET, RegionRegistry.default()).validate(parsed.rows, "hk", NOW)

    assert parsed.rows[1] == {INVALID_KEY: "line 3: 3 cells but the header names 4 columns"}
    assert [r.reason for r in batch.rejected] == [
        RejectionReason.INVALID_RECORD,
        RejectionReason.WRONG_TYPE,
        RejectionReason.WRONG_TYPE,
    ]
    assert "2021-13" in batch.rejected[1].message
    assert "'value'" in batch.rejected[2].message
    time_period_at = 2 + DATASET.field_names.index("time_period")  # after record id and region
    assert [r[time_period_at] for r in batch.accepted] == ["2019", "2023"]
    assert parsed.rows[-1]["value"] == 1234.5


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (b"\xff\xfe", "bad-encoding"),
        (b"a,b,c\n1,2,3\n", "missing-header"),
        (b"indicator,area,value\nGDP,HK,1\n", "missing-header"),
    ],
)
def test_a_table_that_cannot_be_read_raises_payload_error(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_indicator_csv(data, DATASET)

    assert caught.value.reason == reason


def test_indicator_csv_is_a_format_by_name() -> None:
    fmt = format_named("indicator-csv")

    parsed = fmt.parse(_read("ecb-usd-eur-monthly-long.csv"), DATASET, ParseOptions())

    assert len(parsed.rows) == 24
    assert parsed.format == "indicator-csv"


def test_windows_line_ends_and_a_byte_order_mark_read_the_same() -> None:
    data = _read("ecb-usd-eur-monthly-long.csv")
    windows = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")

    assert parse_indicator_csv(windows, DATASET).rows == parse_indicator_csv(data, DATASET).rows
