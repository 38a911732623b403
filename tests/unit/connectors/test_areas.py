"""Area codes name baylink regions where they can; other areas name none."""

from __future__ import annotations

from pathlib import Path

import pytest
import sdmx
import sdmx.message

from connectors.areas import area_in, region_of_area
from domain.region import RegionRegistry

IMF_AREAS = Path(__file__).resolve().parents[2] / "fixtures" / "sdmx" / "imf-cl-area-structure.xml"


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("HK", "hk"),
        ("HKG", "hk"),
        ("344", "hk"),
        ("CN-HK", "hk"),
        ("hong kong, china", "hk"),
        ("香港", "hk"),
        ("MO", "mo"),
        ("MAC", "mo"),
        ("Macau", "mo"),
        ("CN-92", "mo"),
        ("CN-GD", "gd"),
        ("CN-44", "gd"),
        ("440000", "gd"),
        ("Guangdong", "gd"),
        ("440300", "gd-shenzhen"),
        ("Shenzhen", "gd-shenzhen"),
        ("441900", "gd-dongguan"),
        (" hk ", "hk"),
    ],
)
def test_codes_of_the_bay_area_map_to_their_region(code: str, region: str) -> None:
    assert region_of_area(code) == region
    assert region in RegionRegistry.default()


@pytest.mark.parametrize("code", ["CN", "CHN", "US", "U2", "_X", "532", "", "Hong"])
def test_other_areas_name_no_region(code: str) -> None:
    assert region_of_area(code) is None


def test_the_imf_area_code_list_names_hong_kong_and_macao_by_the_codes_mapped() -> None:
    message = sdmx.read_sdmx(IMF_AREAS)
    assert isinstance(message, sdmx.message.StructureMessage)
    areas = message.codelist["CL_AREA"]
    names = {code.id: str(code.name) for code in areas}

    assert names["HK"] == "Hong Kong, China"
    assert names["MO"] == "Macao"
    mapped = {code: region_of_area(code) for code in names}
    assert {code for code, region in mapped.items() if region} == {"HK", "MO"}
    assert region_of_area(names["HK"]) == "hk"
    assert region_of_area(names["MO"]) == "mo"


def test_the_reference_area_is_preferred_to_a_counterpart_area() -> None:
    assert area_in({"COUNTERPART_AREA": "US", "REF_AREA": "HK"}) == "HK"
    assert area_in({"CURRENCY": "USD"}) is None
