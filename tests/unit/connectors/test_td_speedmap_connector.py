"""The Transport Department speed map connector, read against a constructed speed map."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.datasets import TD_SPEEDMAP, load
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named
from connectors.payload import INVALID_KEY
from connectors.td_speedmap import parse_speedmap
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

SPEEDMAP = Path(__file__).resolve().parents[2] / "fixtures" / "td" / "speedmap.xml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _link(**elements: str) -> str:
    children = "".join(f"<{name}>{value}</{name}>" for name, value in elements.items())
    return f"<jtis_speedmap>{children}</jtis_speedmap>"


def _speedmap(*links: str) -> bytes:
    return f'<jtis_speedlist xmlns="http://data.one.gov.hk/td">{"".join(links)}</jtis_speedlist>'.encode()


def _validate(rows: list[dict[str, object]]) -> tuple[int, list[tuple[RejectionReason, str]]]:
    validator = RecordValidator(load(TD_SPEEDMAP), RegionRegistry.default())
    batch = validator.validate(rows, "hk", NOW)
    return len(batch.accepted), [(r.reason, r.message) for r in batch.rejected]


def test_each_link_becomes_one_row_with_the_capture_time_in_utc() -> None:
    parsed = parse_speedmap(SPEEDMAP.read_bytes())

    assert parsed.format == "td-speedmap"
    assert [row["link_id"] for row in parsed.rows] == [
        "3001-30016", "3006-30069", "4647-46478", "4002-40029", "5001-50013",
    ]  # fmt: skip
    assert parsed.rows[0] == {
        "link_id": "3001-30016",
        "td_region": "K",
        "road_type": "MAJOR ROUTE",
        "saturation_level": "TRAFFIC GOOD",
        "speed": 55.0,
        # 07:52:35 in Hong Kong (UTC+8) is 23:52:35 UTC the day before.
        "captured_at": datetime(2025, 8, 4, 23, 52, 35, tzinfo=UTC),
    }
    assert parsed.notes == ("1 <TRAFFIC_SPEED> elements were empty (passed on as missing values)",)


def test_an_empty_speed_is_a_missing_value_not_zero() -> None:
    last = parse_speedmap(SPEEDMAP.read_bytes()).rows[-1]

    assert last["link_id"] == "5001-50013"
    assert "speed" not in last


def test_rows_of_the_fixture_are_all_accepted_by_the_shipped_dataset() -> None:
    parsed = parse_speedmap(SPEEDMAP.read_bytes())

    assert _validate(parsed.rows) == (5, [])


def test_shipped_dataset_is_a_hong_kong_speed_in_kmh_keyed_by_link_and_time() -> None:
    dataset = load(TD_SPEEDMAP)

    assert (dataset.id, dataset.owner_region) == ("hk.traffic.road-speed-map", "hk")
    assert dataset.key_fields == ("link_id", "captured_at")
    assert dataset.field("speed").unit == "km/h"
    assert set(dataset.title) == {"en", "zh-Hant", "zh-Hans"}


def test_a_speed_map_without_namespace_reads_the_same() -> None:
    link = _link(LINK_ID="1-2", TRAFFIC_SPEED="40", CAPTURE_DATE="2025-01-01T00:00:00")
    plain = f"<jtis_speedlist>{link}</jtis_speedlist>".encode()

    assert parse_speedmap(plain).rows == parse_speedmap(_speedmap(link)).rows
    assert parse_speedmap(plain).rows[0]["captured_at"] == datetime(2024, 12, 31, 16, tzinfo=UTC)


def test_bad_values_are_kept_for_the_worker_to_reject_naming_the_field() -> None:
    parsed = parse_speedmap(
        _speedmap(
            _link(LINK_ID="1-2", TRAFFIC_SPEED="fast", CAPTURE_DATE="2025-01-01T00:00:00"),
            _link(LINK_ID="1-3", TRAFFIC_SPEED="40", CAPTURE_DATE="2025-01-01"),
            _link(LINK_ID="1-4", TRAFFIC_SPEED="-5", CAPTURE_DATE="2025-01-01T00:00:00"),
            _link(TRAFFIC_SPEED="40", CAPTURE_DATE="2025-01-01T00:00:00"),
        )
    )

    assert parsed.rows[0]["speed"] == "fast"
    assert parsed.rows[1]["captured_at"] == "2025-01-01"  # a date alone is not midnight
    assert "1 <TRAFFIC_SPEED> values could not be read (kept as text for rejection)" in (
        parsed.notes
    )
    accepted, rejected = _validate(parsed.rows)
    assert accepted == 0
    assert [reason for reason, _ in rejected] == [
        RejectionReason.WRONG_TYPE,
        RejectionReason.WRONG_TYPE,
        RejectionReason.OUT_OF_RANGE,
        RejectionReason.MISSING_FIELD,
    ]
    assert "'speed'" in rejected[0][1]
    assert "'link_id'" in rejected[3][1]


def test_a_link_with_a_repeated_element_is_passed_on_as_invalid_with_the_reason() -> None:
    good = _link(LINK_ID="1-2", TRAFFIC_SPEED="40", CAPTURE_DATE="2025-01-01T00:00:00")
    twice = "<jtis_speedmap><LINK_ID>1-3</LINK_ID><LINK_ID>1-4</LINK_ID></jtis_speedmap>"
    nested = "<jtis_speedmap><TRAFFIC_SPEED><x>1</x></TRAFFIC_SPEED></jtis_speedmap>"

    parsed = parse_speedmap(_speedmap(good, twice, nested))

    assert parsed.rows[1] == {INVALID_KEY: "<jtis_speedmap> 2: <LINK_ID> is given 2 times"}
    assert parsed.rows[2] == {
        INVALID_KEY: "<jtis_speedmap> 3: <TRAFFIC_SPEED> holds elements, not a value"
    }
    assert parsed.notes[0] == "2 links could not be read and are passed on as invalid"
    accepted, rejected = _validate(parsed.rows)
    assert accepted == 1
    assert [reason for reason, _ in rejected] == [RejectionReason.INVALID_RECORD] * 2


def test_unexpected_elements_are_counted_in_the_notes() -> None:
    link = _link(LINK_ID="1-2", SPEED_LIMIT="50", CAPTURE_DATE="2025-01-01T00:00:00")

    parsed = parse_speedmap(_speedmap(link, "<banner>maintenance</banner>"))

    assert len(parsed.rows) == 1
    assert set(parsed.notes) == {
        "1 <SPEED_LIMIT> elements in <jtis_speedmap> were not expected, ignored",
        "1 <banner> elements in <jtis_speedlist> were not expected, ignored",
    }


def test_an_empty_speed_map_gives_no_rows_and_says_so() -> None:
    assert parse_speedmap(_speedmap()).notes == ("the speed map holds no <jtis_speedmap> links",)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (b"  \n", "empty-payload"),
        (b"<jtis_speedlist><jtis_speedmap><LINK_ID>1", "truncated-xml"),
        (b"<jtis_speedlist></jtis_speedmap>", "bad-xml"),
        (b"\x00\x01binary", "bad-xml"),
        (b"<raw_speed_volume_list/>", "wrong-document"),
    ],
)
def test_a_payload_that_is_not_a_speed_map_is_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_speedmap(data)

    assert caught.value.reason == reason
    assert "speed map" in str(caught.value)


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<jtis_speedlist><jtis_speedmap><LINK_ID>&lol2;</LINK_ID></jtis_speedmap>"
        b"</jtis_speedlist>"
    )

    with pytest.raises(PayloadError) as caught:
        parse_speedmap(bomb)

    assert caught.value.reason == "unsafe-xml"


def test_an_external_entity_is_refused_and_nothing_is_read() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<jtis_speedlist><jtis_speedmap><LINK_ID>&e;</LINK_ID></jtis_speedmap>"
        b"</jtis_speedlist>"
    )

    with pytest.raises(PayloadError) as caught:
        parse_speedmap(xxe)

    assert caught.value.reason == "unsafe-xml"
    assert "root:" not in str(caught.value)


def test_the_td_speedmap_format_has_no_suffix_and_parses_by_name() -> None:
    fmt = format_named("td-speedmap")
    dataset = load(TD_SPEEDMAP)

    assert fmt.suffixes == ()
    assert len(fmt.parse(SPEEDMAP.read_bytes(), dataset, ParseOptions()).rows) == 5
