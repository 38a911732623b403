"""The SDMX connector: real ECB and SDMX-CSV specimens read into sdmx-observations records."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.datasets import SDMX_OBSERVATIONS, load
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named, format_of
from connectors.payload import INVALID_KEY, REGION_KEY
from connectors.sdmx import parse_sdmx
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

SDMX = Path(__file__).resolve().parents[2] / "fixtures" / "sdmx"
DATASET = load(SDMX_OBSERVATIONS)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _read(name: str) -> bytes:
    return (SDMX / name).read_bytes()


def _rows(name: str, structure: str | None = None) -> list[dict[str, object]]:
    return parse_sdmx(_read(name), DATASET, _read(structure) if structure else None).rows


CHF_AUGUST_2010 = {
    "structure": "ECB:ECB_EXR_NG(1.0)",
    "series_key": "M.CHF.EUR.SP00.E",
    "dimensions": (
        '{"FREQ":"M","CURRENCY":"CHF","CURRENCY_DENOM":"EUR","EXR_TYPE":"SP00","EXR_VAR":"E"}'
    ),
    "time_period": "2010-08",
    "period_start": datetime(2010, 8, 1, tzinfo=UTC),
    "value": 1.3413,
    "unit": "CHF",
    "unit_mult": 0,
    "decimals": 4,
    "obs_status": "A",
    "area": None,
}


def test_generic_sdmx_ml_gives_one_record_per_observation() -> None:
    rows = _rows("ng-ts.xml")

    assert len(rows) == 12
    first = dict(rows[0])
    attributes = json.loads(str(first.pop("attributes")))
    assert first == CHF_AUGUST_2010
    assert attributes == {
        "DECIMALS": "4",
        "UNIT_MEASURE": "CHF",
        "UNIT_MULT": "0",
        "COLL_METHOD": "Average of observations through period",
        "TITLE": "ECB reference exchange rate, Swiss franc/Euro",
        "OBS_STATUS": "A",
        "CONF_STATUS_OBS": "F",
    }
    assert sorted({str(row["series_key"]) for row in rows}) == [
        "M.CHF.EUR.SP00.E",
        "M.GBP.EUR.SP00.E",
        "M.JPY.EUR.SP00.E",
        "M.USD.EUR.SP00.E",
    ]
    yen = [r for r in rows if r["series_key"] == "M.JPY.EUR.SP00.E"]
    assert [(r["time_period"], r["value"]) for r in yen] == [
        ("2010-08", 110.04),
        ("2010-09", 110.26),
        ("2010-10", 113.67),
    ]


def test_structure_specific_sdmx_ml_read_by_its_dsd_gives_the_same_records_as_generic() -> None:
    generic = _rows("ng-ts.xml")
    specific = _rows("ng-ts-ss.xml", structure="ng-structure.xml")

    assert specific == generic


def test_structure_specific_sdmx_ml_without_its_dsd_says_to_pass_the_structure() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(_read("ng-ts-ss.xml"), DATASET)

    assert caught.value.reason == "structure-required"
    assert "--structure" in caught.value.message
    assert "ECB_EXR_NG" in caught.value.message


def test_a_long_generic_series_with_its_dsd_reads_every_month() -> None:
    parsed = parse_sdmx(_read("ecb-exr1-usd-generic.xml"), DATASET, _read("ecb-exr1-structure.xml"))

    assert len(parsed.rows) == 252
    first, last = parsed.rows[0], parsed.rows[-1]
    assert (first["time_period"], first["value"]) == ("1999-01", 1.16078)
    assert (last["time_period"], last["value"]) == ("2019-12", 1.111345)
    assert last["period_start"] == datetime(2019, 12, 1, tzinfo=UTC)
    assert {row["structure"] for row in parsed.rows} == {"ECB:ECB_EXR1(1.0)"}
    assert {row["unit"] for row in parsed.rows} == {"USD"}
    assert parsed.notes[0] == "read as SDMX-ML generic (structure ECB:ECB_EXR1(1.0))"


@pytest.mark.parametrize("name", ["ts.json", "flat.json"])
def test_sdmx_json_series_and_flat_layouts_read_the_same_observations(name: str) -> None:
    rows = _rows(name)

    assert [(r["series_key"], r["time_period"], r["value"]) for r in rows] == [
        ("D.NZD.EUR.SP00.A", "2013-01-18", 1.5931),
        ("D.NZD.EUR.SP00.A", "2013-01-21", 1.5925),
        ("D.RUB.EUR.SP00.A", "2013-01-18", 40.3426),
        ("D.RUB.EUR.SP00.A", "2013-01-21", 40.3),
    ]
    assert {r["structure"] for r in rows} == {"ECB:EXR(1.0)"}
    assert rows[1]["period_start"] == datetime(2013, 1, 21, tzinfo=UTC)
    assert {r["obs_status"] for r in rows} == {"A"}


def test_a_data_set_to_delete_is_not_taken_as_records() -> None:
    parsed = parse_sdmx(_read("action-delete.json"), DATASET)
    rows = parsed.rows

    invalid = [row for row in rows if INVALID_KEY in row]
    assert len(rows) == 3
    assert len(invalid) == 1
    assert "Delete" in str(invalid[0][INVALID_KEY])
    assert not any("could not be read" in note for note in parsed.notes)


@pytest.mark.parametrize(
    ("name", "period"),
    [
        ("example-01.csv", "2014-01"),
        ("example-04.csv", "2014-01"),  # ";" separated, decimal comma, "ID: label" cells
        ("example-05.csv", "2014-01-01"),
        ("example-06.csv", "2014-01"),  # a label column beside every component
        ("example-07.csv", "2014-01"),
    ],
)
def test_sdmx_csv_specification_examples_read_by_their_dsd(name: str, period: str) -> None:
    rows = _rows(f"v3-csv/{name}", structure="estat-na-main-structure.xml")

    assert [(r["series_key"], r["value"]) for r in rows] == [("A.B", 12.4), ("A.B", 10.8)]
    assert rows[0]["time_period"] == period
    assert rows[0]["period_start"] == datetime(2014, 1, 1, tzinfo=UTC)
    assert rows[0]["structure"] == "ESTAT:NA_MAIN(1.6.0)"


def test_sdmx_csv_attributes_with_several_values_are_kept_together() -> None:
    rows = _rows("v3-csv/example-07.csv", structure="estat-na-main-structure.xml")

    assert json.loads(str(rows[0]["attributes"])) == {
        "ATTR_1": "Value X;Value Y",
        "ATTR_2": "M, N & O;P & Q",
        "ATTR_3": "A;B;C",
    }


def test_sdmx_csv_rows_of_two_structure_versions_keep_their_own_structure() -> None:
    rows = _rows("v3-csv/example-08.csv", structure="estat-na-main-structure.xml")

    assert [r["structure"] for r in rows] == ["ESTAT:NA_MAIN(1.6.0)", "ESTAT:NA_MAIN(1.7.0)"]


def test_sdmx_csv_1_without_a_dsd_reads_like_the_generic_message_it_was_written_from() -> None:
    parsed = parse_sdmx(_read("ecb-exr-ng.csv"), DATASET)
    generic = _rows("ng-ts.xml")

    def essentials(row: dict[str, object]) -> tuple[object, ...]:
        return tuple(v for k, v in row.items() if k not in ("structure", "attributes"))

    assert [essentials(r) for r in parsed.rows] == [essentials(r) for r in generic]
    assert {r["structure"] for r in parsed.rows} == {"ECB:EXR(1.0)"}
    assert any("no data structure definition given" in note for note in parsed.notes)
    assert any("SDMX-CSV 1.0" in note for note in parsed.notes)


def test_sdmx_csv_without_a_dsd_takes_multi_valued_columns_for_attributes() -> None:
    parsed = parse_sdmx(_read("v3-csv/example-07.csv"), DATASET)

    assert parsed.rows[0]["series_key"] == "A.B.2014-01"
    assert json.loads(str(parsed.rows[0]["attributes"]))["ATTR_3"] == "A;B;C"


def test_areas_that_name_a_region_carry_it_and_others_are_kept_as_given() -> None:
    table = (
        "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE\n"
        "dataflow,IMF:IFS(1.0),I,A,HK,NGDP,2019,2.8,HKD\n"
        "dataflow,IMF:IFS(1.0),I,A,MO,NGDP,2019,4.4,MOP\n"
        "dataflow,IMF:IFS(1.0),I,A,CN-GD,NGDP,2019,10.8,CNY\n"
        "dataflow,IMF:IFS(1.0),I,A,CN,NGDP,2019,99.1,CNY\n"
    )
    rows = parse_sdmx(table.encode(), DATASET).rows

    assert [(r["area"], r.get(REGION_KEY)) for r in rows] == [
        ("HK", "hk"),
        ("MO", "mo"),
        ("CN-GD", "gd"),
        ("CN", None),
    ]


def test_missing_values_are_kept_missing_beside_their_status() -> None:
    data = _read("ng-ts.xml").replace(
        b'<generic:ObsValue value="1.3413"/>', b'<generic:ObsValue value="NaN"/>', 1
    )
    parsed = parse_sdmx(data, DATASET)

    assert parsed.rows[0]["value"] is None
    assert parsed.rows[1]["value"] == 1.3089
    assert any("1 observations have no value" in note for note in parsed.notes)


def test_every_specimen_record_is_accepted_by_the_ingest_worker() -> None:
    validator = RecordValidator(DATASET, RegionRegistry.default())
    rows = [
        *_rows("ng-ts.xml"),
        *_rows("ecb-exr1-usd-generic.xml", structure="ecb-exr1-structure.xml"),
        *_rows("ts.json"),
        *_rows("ecb-exr-ng.csv"),
    ]

    batch = validator.validate(rows, "hk", NOW)

    assert batch.rejected == []
    assert len(batch.accepted) == len(rows) == 12 + 252 + 4 + 12


def test_a_period_that_cannot_be_read_is_rejected_naming_it() -> None:
    august = b'<generic:ObsDimension value="2010-08"/>'
    data = _read("ng-ts.xml").replace(august, august.replace(b"08", b"13"), 1)
    parsed = parse_sdmx(data, DATASET)
    validator = RecordValidator(DATASET, RegionRegistry.default())

    batch = validator.validate(parsed.rows, "hk", NOW)

    assert [r.reason for r in batch.rejected] == [RejectionReason.WRONG_TYPE]
    assert "2010-13" in batch.rejected[0].message
    assert any("'2010-13'" in note for note in parsed.notes)


def test_a_structure_message_given_as_data_says_where_it_belongs() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(_read("ng-structure.xml"), DATASET)

    assert caught.value.reason == "structure-not-data"
    assert "--structure" in caught.value.message


def test_a_structure_without_the_dsd_the_data_cites_is_refused() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(_read("ng-ts-ss.xml"), DATASET, _read("ng-ts.xml"))

    assert caught.value.reason == "bad-structure"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"hello, world\n",
        b"<html><body/></html>",
        b'{"not": "sdmx"}',
        b"STRUCTURE,STRUCTURE_ID\n",
        b"<message:GenericData",
    ],
)
def test_payloads_that_are_no_sdmx_raise_payload_error(data: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(data, DATASET)

    assert caught.value.reason
    assert caught.value.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


def _with_doctype(doctype: bytes, specimen: str, value: bytes) -> bytes:
    """The specimen with a DTD before its root and an entity reference as the first value."""
    body = _read(specimen).split(b"?>", 1)[1]
    body = body.replace(b'value="1.3413"', b'value="' + value + b'"', 1)
    return doctype + body


def test_entity_expansion_is_refused_before_it_can_grow() -> None:
    data = _with_doctype(BILLION_LAUGHS, "ng-ts.xml", b"&lol9;")

    with pytest.raises(PayloadError) as caught:
        parse_sdmx(data, DATASET)

    assert caught.value.reason == "xml-doctype"


def test_a_dtd_the_parser_stops_in_is_refused_as_a_dtd_wherever_the_prolog_puts_it() -> None:
    # An entity reference before its declaration stops the parser inside the DTD; behind a
    # byte-order mark, a comment and a processing instruction it is still the prolog's DTD.
    broken_dtd = b'<!DOCTYPE m [<!ENTITY a "&b;"> <!ENTITY b "x">'
    prolog = b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- a comment -->\n<?pi data?>\n'
    for data in (broken_dtd, prolog + broken_dtd):
        with pytest.raises(PayloadError) as caught:
            parse_sdmx(data, DATASET)
        assert caught.value.reason == "xml-doctype", data


def test_malformed_xml_that_only_mentions_a_doctype_is_not_xml() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(b"<m>the text <!DOCTYPE is not a declaration here</m", DATASET)

    assert caught.value.reason == "not-xml"


def test_external_entities_cannot_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-value")
    doctype = f'<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n'
    for specimen in ("ng-ts.xml", "ng-ts-ss.xml"):
        data = _with_doctype(doctype.encode(), specimen, b"&x;")

        with pytest.raises(PayloadError) as caught:
            parse_sdmx(data, DATASET, _read("ng-structure.xml"))

        assert caught.value.reason == "xml-doctype"
        assert "s3cr3t" not in caught.value.message


def test_a_structure_message_with_a_dtd_is_refused_too() -> None:
    structure = BILLION_LAUGHS + _read("ng-structure.xml").split(b"?>", 1)[1]

    with pytest.raises(PayloadError) as caught:
        parse_sdmx(_read("ng-ts-ss.xml"), DATASET, structure)

    assert caught.value.reason == "xml-doctype"


def test_sdmx_is_chosen_by_name_and_reads_its_structure_from_the_options() -> None:
    fmt = format_named("sdmx")
    options = ParseOptions(structure=_read("ng-structure.xml"))

    parsed = fmt.parse(_read("ng-ts-ss.xml"), DATASET, options)

    assert len(parsed.rows) == 12
    assert (fmt.connector, parsed.format) == ("sdmx", "sdmx")


def test_a_file_name_that_says_sdmx_picks_the_sdmx_format_and_plain_csv_stays_csv() -> None:
    assert format_of("https://example.org/ifs.sdmx.csv?key=A..NGDP").name == "sdmx"
    assert format_of("ecb-exr.sdmx.xml").name == "sdmx"
    assert format_of("road-speed.csv").name == "csv"


def test_sdmx_ml_3_structure_specific_data_reads_by_its_dsd() -> None:
    parsed = parse_sdmx(_read("v3-ecb-exr-ca.xml"), DATASET, _read("v3-ecb-exr-ca-structure.xml"))

    assert [(r["series_key"], r["time_period"], r["value"]) for r in parsed.rows] == [
        ("A.CAD.EUR.SP00.A", "2017", 1.46472274509804),
        ("A.CAD.EUR.SP00.A", "2018", 1.529364705882353),
        ("A.CAD.EUR.SP00.A", "2019", 1.485477254901961),
    ]
    assert {r["structure"] for r in parsed.rows} == {"ECB:ECB_EXR_COMPLEX_ATTRIBUTES(1.0)"}
    attributes = json.loads(str(parsed.rows[0]["attributes"]))
    assert attributes["TITLE_COMPL"].startswith("ECB reference exchange rate, Canadian dollar")


def test_sdmx_ml_3_reads_after_structure_specific_2_1_in_a_fresh_process() -> None:
    # sdmx1 fails here when its 3.0 reader is first loaded after a 2.1 structure-specific
    # message was read; a fresh interpreter makes the order certain.
    script = (
        "import sys; from pathlib import Path\n"
        "from connectors.datasets import load\n"
        "from connectors.sdmx import parse_sdmx\n"
        "d, f = load('sdmx-observations'), Path(sys.argv[1])\n"
        "parse_sdmx((f / 'ng-ts-ss.xml').read_bytes(), d, (f / 'ng-structure.xml').read_bytes())\n"
        "rows = parse_sdmx((f / 'v3-ecb-exr-ca.xml').read_bytes(), d,\n"
        "                  (f / 'v3-ecb-exr-ca-structure.xml').read_bytes()).rows\n"
        "print(len(rows))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(SDMX)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_sdmx_csv_records_sdmx1_could_not_read_are_set_aside_one_by_one() -> None:
    table = (
        "STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,TIME_PERIOD,OBS_VALUE,TITLE\n"
        "dataflow,HK:GDP(1.0),I,HK,2019,1.5,plain\n"
        'dataflow,HK:GDP(1.0),I,HK,2020,2.5,"two\nlines"\n'
        "dataflow,HK:GDP(1.0),X,HK,2021,3.5,bad action\n"
        "dataflow,HK:GDP(1.0),I,HK,2022\n"
        "dataflow,HK:GDP(1.0),D,HK,2018,0.5,deleted\n"
        "dataflow,HK:GDP(1.0),I,HK,2023,4.5,plain\n"
    )
    parsed = parse_sdmx(table.encode(), DATASET)

    reasons = [str(row[INVALID_KEY]) for row in parsed.rows if INVALID_KEY in row]
    assert [row["time_period"] for row in parsed.rows if INVALID_KEY not in row] == ["2019", "2023"]
    assert reasons == [
        "line 4: a cell holds a line break",
        "line 5: ACTION 'X' is not one of A, D, I, R",
        "line 6: 5 cells but the header names 7 columns",
        "line 7: ACTION D asks to delete the observation; deletions are not taken as records",
    ]
    assert "3 observations could not be read and are passed on as invalid" in parsed.notes
    assert any(note.startswith("1 observations marked for deletion") for note in parsed.notes)


def test_a_dsd_other_than_the_one_the_data_cites_is_named_when_it_does_not_fit() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(_read("ng-ts-ss.xml"), DATASET, _read("ecb-exr1-structure.xml"))

    assert caught.value.reason == "not-sdmx"
    assert "the data cites ECB_EXR_NG" in caught.value.message
    assert "ECB:ECB_EXR1(1.0)" in caught.value.message


@pytest.mark.parametrize("name", ["ng-ts.xml", "ts.json", "ecb-exr-ng.csv"])
def test_utf16_with_its_byte_order_mark_reads_like_utf8(name: str) -> None:
    utf8 = _read(name)
    text = utf8.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)

    assert parse_sdmx(text.encode("utf-16"), DATASET).rows == parse_sdmx(utf8, DATASET).rows


def test_bytes_that_are_no_text_name_the_first_bad_byte() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_sdmx(b"STRUCTURE,\xff\n", DATASET)

    assert caught.value.reason == "bad-encoding"
    assert "0xff at offset 10" in caught.value.message


def test_sdmx_csv_with_windows_line_ends_reads_the_same() -> None:
    data = _read("ecb-exr-ng.csv")

    assert parse_sdmx(data.replace(b"\n", b"\r\n"), DATASET).rows == _rows("ecb-exr-ng.csv")
