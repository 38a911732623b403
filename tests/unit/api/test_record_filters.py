"""Reading the area filter: four edges in WGS-84 degrees, west before east, south before north."""

from __future__ import annotations

import pytest

from storage.errors import BadFilterError
from storage.query import BoundingBox


def test_an_area_is_read_as_west_south_east_north() -> None:
    assert BoundingBox.parse("113.9,22.2,114.0,22.3") == BoundingBox(113.9, 22.2, 114.0, 22.3)


def test_an_area_may_be_a_single_point() -> None:
    assert BoundingBox.parse("114,22,114,22").as_list() == [114, 22, 114, 22]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("113.9,22.2,114.0", "min_lon,min_lat,max_lon,max_lat"),
        ("113.9,22.2,114.0,22.3,1", "min_lon,min_lat,max_lon,max_lat"),
        ("west,south,east,north", "numbers"),
        ("114.0,22.2,113.9,22.3", "east of max_lon"),
        ("113.9,22.3,114.0,22.2", "north of max_lat"),
        ("113.9,-91,114.0,22.2", "latitudes"),
        ("-181,22.2,114.0,22.3", "longitudes"),
        ("nan,22.2,114.0,22.3", "finite"),
        ("113.9,22.2,inf,22.3", "finite"),
    ],
)
def test_a_malformed_area_is_refused_naming_the_bbox_parameter(text: str, words: str) -> None:
    with pytest.raises(BadFilterError, match=words) as refused:
        BoundingBox.parse(text)

    assert refused.value.parameter == "bbox"
