"""The Transport Department detector connector, read against a constructed detector feed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.datasets import TD_DETECTOR, load
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named
from connectors.payload import INVALID_KEY
from connectors.td_detector import parse_detector
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

DETECTOR = Path(__file__).resolve().parents[2] / "fixtures" / "td" / "detector.xml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LANE = (
    "<lane><lane_id>Fast Lane</lane_id><speed>50</speed><occupancy>2</occupancy>"
    "<volume>1</volume><s.d.>3.5</s.d.><valid>Y</valid></lane>"
)


def _document(
    periods: str, day: str = "<date>2025-08-05</date>", root: str = "raw_speed_volume_list"
) -> bytes:
    return f"<{root}>{day}<periods>{periods}</periods></{root}>".encode()


def _period(detectors: str, start: str = "07:53:00", end: str = "07:53:30") -> str:
    return (
        f"<period><period_from>{start}</period_from><period_to>{end}</period_to>"
        f"<detectors>{detectors}</detectors></period>"
    )


def _detector(lanes: str, detector_id: str = "AID01101") -> str:
    return (
        f"<detector><detector_id>{detector_id}</detector_id><direction>North</direction>"
        f"<lanes>{lanes}</lanes></detector>"
    )


def _validate(rows: list[dict[str, object]]) -> tuple[int, list[tuple[RejectionReason, str]]]:
    validator = RecordValidator(load(TD_DETECTOR), RegionRegistry.default())
    batch = validator.validate(rows, "hk", NOW)
    return len(batch.accepted), [(r.reason, r.message) for r in batch.rejected]


def test_each_lane_of_each_detector_in_each_period_becomes_one_row() -> None:
    parsed = parse_detector(DETECTOR.read_bytes())

    assert parsed.format == "td-detector"
    assert [(row["detector_id"], row["lane_id"]) for row in parsed.rows] == [
        ("AID01101", "Fast Lane"),
        ("AID01101", "Middle Lane"),
        ("AID01101", "Slow Lane"),
        ("AID03208", "Fast Lane"),
        ("AID03208", "Slow Lane"),
        ("AID01101", "Fast Lane"),
    ]
    assert parsed.rows[0] == {
        "detector_id": "AID01101",
        "direction": "South East",
        "lane_id": "Fast Lane",
        # 07:53:00-07:53:30 on 5 August in Hong Kong (UTC+8).
        "period_start": datetime(2025, 8, 4, 23, 53, tzinfo=UTC),
        "period_end": datetime(2025, 8, 4, 23, 53, 30, tzinfo=UTC),
        "speed": 66.0,
        "occupancy": 3.0,
        "volume": 4,
        "speed_sd": 8.1,
        "valid": True,
    }
    assert parsed.rows[5]["period_start"] == datetime(2025, 8, 4, 23, 53, 30, tzinfo=UTC)
    assert parsed.notes == ("2 <occupancy> elements were empty (passed on as missing values)",)


def test_empty_occupancy_is_a_missing_value_and_an_invalid_flag_is_false() -> None:
    rows = parse_detector(DETECTOR.read_bytes()).rows

    assert "occupancy" not in rows[2]
    assert rows[3]["valid"] is False
    assert rows[3]["occupancy"] == 0.0  # a reading of zero stays zero


def test_rows_of_the_fixture_are_all_accepted_by_the_shipped_dataset() -> None:
    assert _validate(parse_detector(DETECTOR.read_bytes()).rows) == (6, [])


def test_shipped_dataset_is_keyed_by_detector_lane_and_period_with_units() -> None:
    dataset = load(TD_DETECTOR)

    assert (dataset.id, dataset.owner_region) == ("hk.traffic.detector-readings", "hk")
    assert dataset.key_fields == ("detector_id", "lane_id", "period_start")
    assert dataset.field("speed").unit == "km/h"
    assert dataset.field("speed_sd").unit == "km/h"
    assert (dataset.field("occupancy").minimum, dataset.field("occupancy").maximum) == (0, 100)


def test_a_period_across_midnight_ends_on_the_next_day() -> None:
    parsed = parse_detector(_document(_period(_detector(LANE), "23:59:30", "00:00:00")))

    row = parsed.rows[0]
    assert row["period_start"] == datetime(2025, 8, 5, 15, 59, 30, tzinfo=UTC)
    assert row["period_end"] == datetime(2025, 8, 5, 16, 0, tzinfo=UTC)


def test_bad_values_are_kept_for_the_worker_to_reject_naming_the_field() -> None:
    lanes = (
        LANE.replace("<volume>1</volume>", "<volume>1.5</volume>")
        + LANE.replace("<occupancy>2</occupancy>", "<occupancy>120</occupancy>")
        + LANE.replace("<valid>Y</valid>", "<valid>maybe</valid>")
        + LANE.replace("<lane_id>Fast Lane</lane_id>", "")
    )
    parsed = parse_detector(_document(_period(_detector(lanes))))

    assert parsed.rows[0]["volume"] == "1.5"
    accepted, rejected = _validate(parsed.rows)
    assert accepted == 0
    assert [reason for reason, _ in rejected] == [
        RejectionReason.WRONG_TYPE,
        RejectionReason.OUT_OF_RANGE,
        RejectionReason.WRONG_TYPE,
        RejectionReason.MISSING_FIELD,
    ]
    assert ["'volume'" in rejected[0][1], "'lane_id'" in rejected[3][1]] == [True, True]


def test_an_unreadable_period_time_is_kept_and_rejected_by_the_worker() -> None:
    parsed = parse_detector(_document(_period(_detector(LANE), start="7h53")))

    assert parsed.rows[0]["period_start"] == "7h53"
    assert "1 period_start values were not HH:MM:SS (kept as text for rejection)" in parsed.notes
    accepted, rejected = _validate(parsed.rows)
    assert (accepted, rejected[0][0]) == (0, RejectionReason.WRONG_TYPE)


def test_broken_periods_detectors_and_lanes_become_invalid_rows_with_reasons() -> None:
    twice = "<period><period_from>07:00</period_from><period_from>07:30</period_from></period>"
    no_lanes = "<detector><detector_id>AID9</detector_id></detector>"
    nested_lane = "<lane><lane_id>Fast Lane</lane_id><speed><v>1</v></speed></lane>"
    periods = twice + _period(no_lanes + _detector(LANE + nested_lane, "AID2"))

    parsed = parse_detector(_document(periods))

    assert parsed.rows[0] == {INVALID_KEY: "<period> 1: <period_from> is given 2 times"}
    assert parsed.rows[1] == {INVALID_KEY: "<period> 2, <detector> 1 (AID9): no <lane> readings"}
    assert parsed.rows[2]["lane_id"] == "Fast Lane"
    assert parsed.rows[3] == {
        INVALID_KEY: "<period> 2, <detector> 2 (AID2), <lane> 2: "
        "<speed> holds elements, not a value"
    }
    assert parsed.notes[0] == "3 periods, detectors or lanes could not be read (invalid rows)"
    accepted, rejected = _validate(parsed.rows)
    assert accepted == 1
    assert [reason for reason, _ in rejected] == [RejectionReason.INVALID_RECORD] * 3


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("", "the TD detector document has no <date>"),
        ("<date>2025-08-05</date><date>2025-08-06</date>", "gives <date> 2 times"),
        ("<date>05/08/2025</date>", "'05/08/2025' is not YYYY-MM-DD"),
    ],
)
def test_a_document_without_one_readable_date_is_rejected_whole(day: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_detector(_document(_period(_detector(LANE)), day=day))

    assert caught.value.reason == "bad-date"
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (DETECTOR.read_bytes()[:500], "truncated-xml"),
        (b"<raw_speed_volume_list><date>", "truncated-xml"),
        (b"<jtis_speedlist/>", "wrong-document"),
        (b"not xml at all", "bad-xml"),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://example.invalid/">]><x>&e;</x>', "unsafe-xml"),
    ],
)
def test_a_payload_that_is_not_a_detector_document_is_rejected_whole(
    data: bytes, reason: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_detector(data)

    assert caught.value.reason == reason


def test_a_document_without_periods_gives_no_rows_and_says_so() -> None:
    parsed = parse_detector(_document("").replace(b"<periods></periods>", b""))

    assert parsed.rows == []
    assert parsed.notes == ("the document holds no <period>",)


def test_the_td_detector_format_has_no_suffix_and_parses_by_name() -> None:
    fmt = format_named("td-detector")

    assert fmt.suffixes == ()
    assert len(fmt.parse(DETECTOR.read_bytes(), load(TD_DETECTOR), ParseOptions()).rows) == 6
