"""The tabular connector: CSV and JSON-lines read against a road-speed dataset."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY
from connectors.tabular import parse_csv, parse_jsonl
from domain.dataset import DatasetDefinition

TABULAR = Path(__file__).resolve().parents[2] / "fixtures" / "tabular"
HALF_PAST_MIDNIGHT = datetime(2024, 5, 1, 0, 30, tzinfo=UTC)


def _dataset() -> DatasetDefinition:
    return DatasetDefinition.from_dict(yaml.safe_load((TABULAR / "road-speed.yaml").read_text()))


def _csv_rows() -> list[dict[str, object]]:
    return parse_csv((TABULAR / "road-speed.csv").read_bytes(), _dataset()).rows


def _jsonl() -> bytes:
    return (TABULAR / "road-speed.jsonl").read_bytes()


def test_csv_cells_are_converted_by_their_field_type() -> None:
    first, second = _csv_rows()[:2]

    assert first == {
        "link_id": "722-50059",
        "region": "hk",
        "road_name": "Gloucester Road, Wan Chai",
        "saturation": "TRAFFIC GOOD",
        "speed_kmh": 48.5,
        "lane_count": 3,
        "incident": False,
        "captured_at": HALF_PAST_MIDNIGHT,
        "lat": 22.2793,
        "lon": 114.1762,
    }
    assert (second["speed_kmh"], second["incident"]) == (23.0, True)
    assert second["captured_at"] == HALF_PAST_MIDNIGHT


def test_csv_timestamps_are_utc_datetimes_whatever_offset_they_were_written_in() -> None:
    stamps = [row["captured_at"] for row in _csv_rows()]

    for stamp in (stamps[0], stamps[1], stamps[3]):
        assert isinstance(stamp, datetime)
        assert stamp.utcoffset() is not None
        assert stamp.utcoffset() == UTC.utcoffset(None)


def test_csv_cells_that_do_not_convert_are_kept_as_written_for_the_worker() -> None:
    parsed = parse_csv((TABULAR / "road-speed.csv").read_bytes(), _dataset())
    third = parsed.rows[2]

    assert (third["speed_kmh"], third["lane_count"], third["incident"]) == ("fast", "2.5", "yes")
    assert third["captured_at"] == "2024-05-01 08:30:00"  # naive: not assumed to be UTC
    assert "4 cells did not convert to their field's type and were kept as text" in parsed.notes


def test_csv_empty_cells_are_missing_and_nan_passes_through_as_a_float() -> None:
    fourth = _csv_rows()[3]

    assert (fourth["saturation"], fourth["lane_count"], fourth["lat"]) == (None, None, None)
    assert fourth["lon"] is None  # a blank padded with a space, in a numeric column
    assert isinstance(fourth["speed_kmh"], float)
    assert math.isnan(fourth["speed_kmh"])
    assert fourth["road_name"] == 'Route "Twisk"'
    assert fourth["captured_at"] == datetime(2024, 5, 1, 1, 0, 0, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("lane_count", "-12", -12),
        ("lane_count", " 7 ", 7),
        ("lane_count", "1_000", "1_000"),
        ("lane_count", "٣", "٣"),
        ("lane_count", str(2**63), str(2**63)),
        ("lane_count", "3.0", "3.0"),
        ("speed_kmh", "1e3", 1000.0),
        ("speed_kmh", ".5", 0.5),
        ("speed_kmh", "-inf", -math.inf),
        ("speed_kmh", '"1,5"', "1,5"),
        ("incident", "TRUE", True),
        ("incident", "0", False),
        ("incident", "no", "no"),
        ("captured_at", "2024-05-01T00:30Z", HALF_PAST_MIDNIGHT),
        ("captured_at", "2024-05-01T08:30:00+08:00", HALF_PAST_MIDNIGHT),
        ("captured_at", "2024-05-01", "2024-05-01"),
        ("captured_at", "yesterday", "yesterday"),
        ("road_name", "  padded  ", "  padded  "),
    ],
)
def test_csv_cell_conversion(column: str, cell: str, expected: object) -> None:
    data = f"link_id,{column}\nL1,{cell}\n".encode()

    row = parse_csv(data, _dataset()).rows[0]

    assert row[column] == expected
    assert type(row[column]) is type(expected)


def test_csv_with_a_byte_order_mark_reads_the_same() -> None:
    data = (TABULAR / "road-speed.csv").read_bytes()

    assert parse_csv(b"\xef\xbb\xbf" + data, _dataset()).rows[:3] == _csv_rows()[:3]


def test_csv_without_a_header_row_is_rejected() -> None:
    data = b"722-50059,hk,48.5\n722-50070,hk,23\n"

    with pytest.raises(PayloadError) as caught:
        parse_csv(data, _dataset())

    assert caught.value.reason == "missing-header"
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (b"link_id,lat,link_id", "repeats columns ['link_id']"),
        (b"link_id,,lat", "column 2 of the header has no name"),
    ],
)
def test_csv_header_with_repeated_or_unnamed_columns_is_rejected(header: bytes, says: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_csv(header + b"\nL1,1,2\n", _dataset())

    assert caught.value.reason == "bad-header"
    assert says in str(caught.value)


def test_csv_row_with_the_wrong_number_of_cells_becomes_one_invalid_record() -> None:
    data = b'link_id,lat\nL1,22.1\nL2,22.2,114.1\n"L3\nstill L3",22.3\nL4\n'

    rows = parse_csv(data, _dataset()).rows

    assert rows[0] == {"link_id": "L1", "lat": 22.1}
    assert rows[1] == {INVALID_KEY: "line 3: 3 cells but the header names 2 columns"}
    assert rows[2] == {"link_id": "L3\nstill L3", "lat": 22.3}
    assert rows[3] == {INVALID_KEY: "line 6: 1 cells but the header names 2 columns"}


def test_csv_unknown_columns_are_kept_and_noted_but_region_is_expected() -> None:
    parsed = parse_csv(b"link_id,region,colour\nL1,mo,red\n", _dataset())

    assert parsed.rows == [{"link_id": "L1", "region": "mo", "colour": "red"}]
    assert parsed.notes == ("columns not in 'hk.traffic.road-speed' were kept: ['colour']",)


def test_csv_with_only_a_header_gives_no_rows_and_says_so() -> None:
    parsed = parse_csv(b"link_id,lat\r\n", _dataset())

    assert (parsed.rows, parsed.notes) == ([], ("the payload holds no records",))


def test_csv_cell_beyond_the_csv_module_limit_is_not_csv() -> None:
    data = b"link_id,road_name\nL1," + b"x" * 200_000 + b"\n"

    with pytest.raises(PayloadError) as caught:
        parse_csv(data, _dataset())

    assert caught.value.reason == "not-csv"
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize("parse", [parse_csv, parse_jsonl])
def test_bytes_that_are_not_utf8_fail_the_payload_naming_the_byte_offset(parse: object) -> None:
    data = b'link_id\n"ab\xffc"\n'
    assert callable(parse)

    with pytest.raises(PayloadError) as caught:
        parse(data, _dataset())

    assert caught.value.reason == "bad-encoding"
    assert str(caught.value) == "not UTF-8 at byte offset 11 (line 2): byte 0xff"


def test_bad_encoding_offset_counts_the_byte_order_mark() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_csv(b"\xef\xbb\xbflink_id\n\xc3(\n", _dataset())

    assert "byte offset 11 (line 2)" in str(caught.value)


@pytest.mark.parametrize("parse", [parse_csv, parse_jsonl])
@pytest.mark.parametrize("data", [b"", b" \r\n\n", b"\xef\xbb\xbf"])
def test_empty_payload_is_rejected(parse: object, data: bytes) -> None:
    assert callable(parse)

    with pytest.raises(PayloadError) as caught:
        parse(data, _dataset())

    assert caught.value.reason == "empty-payload"


def test_jsonl_records_are_read_and_timestamps_converted() -> None:
    rows = parse_jsonl(_jsonl(), _dataset()).rows

    assert rows[0]["captured_at"] == HALF_PAST_MIDNIGHT
    assert rows[1] == {
        "link_id": "722-50070",
        "region": "hk",
        "road_name": "彌敦道 Nathan Road",
        "speed_kmh": 23.0,
        "lane_count": 2,
        "incident": True,
        "captured_at": HALF_PAST_MIDNIGHT,
        "lat": 22.3049,
        "lon": 114.1719,
    }
    assert isinstance(rows[1]["speed_kmh"], float)


def test_jsonl_line_that_is_not_json_becomes_one_invalid_record_naming_its_line() -> None:
    parsed = parse_jsonl(_jsonl(), _dataset())

    assert len(parsed.rows) == 5  # the blank line 2 is skipped
    assert str(parsed.rows[2][INVALID_KEY]).startswith("line 4: not JSON")
    assert parsed.rows[3] == {INVALID_KEY: "line 5: expected a JSON object, got list"}
    assert "2 records could not be read and are passed on as invalid" in parsed.notes


def test_jsonl_values_of_the_wrong_type_are_kept_for_the_worker_to_reject() -> None:
    parsed = parse_jsonl(_jsonl(), _dataset())
    last = parsed.rows[4]

    assert (last["captured_at"], last["colour"]) == (1714525200, "red")
    assert "columns not in 'hk.traffic.road-speed' were kept: ['colour']" in parsed.notes


def test_jsonl_naive_timestamp_is_kept_as_text() -> None:
    data = b'{"link_id": "L1", "captured_at": "2024-05-01T08:30:00"}\n'

    parsed = parse_jsonl(data, _dataset())

    assert parsed.rows[0]["captured_at"] == "2024-05-01T08:30:00"
    assert parsed.notes == ("1 timestamps were not ISO 8601 with an offset and were kept as text",)


def test_jsonl_line_separator_inside_a_string_does_not_split_the_record() -> None:
    data = '{"link_id": "L1\u2028L2"}\r\n{"link_id": "L3"}'.encode()

    rows = parse_jsonl(data, _dataset()).rows

    assert rows == [{"link_id": "L1\u2028L2"}, {"link_id": "L3"}]


def test_jsonl_deeply_nested_line_is_one_invalid_record() -> None:
    data = b'{"link_id": "L1"}\n' + b"[" * 100_000 + b"\n"

    rows = parse_jsonl(data, _dataset()).rows

    assert rows[0] == {"link_id": "L1"}
    assert str(rows[1][INVALID_KEY]).startswith("line 2: not JSON")
