"""Classification levels are ordered; regions belong to jurisdictions and can be added to."""

from __future__ import annotations

import pytest

from domain.classification import Classification
from domain.errors import UnknownClassificationError, UnknownRegionError
from domain.region import Region, RegionRegistry


def test_classification_levels_run_from_public_to_restricted() -> None:
    assert (
        Classification.PUBLIC
        < Classification.INTERNAL
        < Classification.SENSITIVE
        < Classification.RESTRICTED
    )
    assert sorted(Classification, reverse=True)[0] is Classification.RESTRICTED
    assert max(Classification.INTERNAL, Classification.PUBLIC) is Classification.INTERNAL


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("public", Classification.PUBLIC),
        ("Internal", Classification.INTERNAL),
        (" SENSITIVE ", Classification.SENSITIVE),
        ("restricted", Classification.RESTRICTED),
    ],
)
def test_classification_is_read_from_its_label(text: str, level: Classification) -> None:
    assert Classification.parse(text) is level
    assert Classification.parse(level.label) is level


def test_an_unknown_classification_names_itself_and_the_known_levels() -> None:
    with pytest.raises(UnknownClassificationError) as refused:
        Classification.parse("top-secret")

    assert "'top-secret'" in str(refused.value)
    assert "public, internal, sensitive, restricted" in str(refused.value)


@pytest.mark.parametrize(
    ("code", "jurisdiction"),
    [
        ("gd-guangzhou", "CN"),
        ("gd-shenzhen", "CN"),
        ("gd-zhuhai", "CN"),
        ("gd-foshan", "CN"),
        ("gd-dongguan", "CN"),
        ("hk", "HK"),
        ("mo", "MO"),
    ],
)
def test_the_greater_bay_area_regions_are_known_by_default(code: str, jurisdiction: str) -> None:
    regions = RegionRegistry.default()

    assert code in regions
    assert regions.get(code).jurisdiction == jurisdiction


def test_default_regions_span_the_three_jurisdictions() -> None:
    assert {region.jurisdiction for region in RegionRegistry.default()} == {"CN", "HK", "MO"}


def test_a_deployment_can_add_regions_without_changing_the_defaults() -> None:
    defaults = RegionRegistry.default()

    extended = defaults.extended([Region("sg", "SG", "Singapore")])

    assert extended.get("sg") == Region("sg", "SG", "Singapore")
    assert "hk" in extended
    assert "sg" not in defaults
    assert "sg" not in RegionRegistry.default()


def test_an_unknown_region_is_named_in_the_error() -> None:
    with pytest.raises(UnknownRegionError, match="unknown region 'tw'"):
        RegionRegistry.default().get("tw")
    assert "tw" not in RegionRegistry.default()


@pytest.mark.parametrize("code", ["HK", "hong kong", "h", "gd_shenzhen", "-hk"])
def test_a_malformed_region_code_is_refused(code: str) -> None:
    with pytest.raises(UnknownRegionError, match="malformed region code"):
        Region(code, "CN")


@pytest.mark.parametrize("jurisdiction", ["cn", "CHN", "", "C1"])
def test_a_jurisdiction_must_be_a_two_letter_code(jurisdiction: str) -> None:
    with pytest.raises(UnknownRegionError, match="jurisdiction must be a two-letter code"):
        Region("gd-shenzhen", jurisdiction)
