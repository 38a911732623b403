"""Which location coarsenings an agreement may write: a grid for lat/lon points, H3 cells for
points and geometry fields, never into a field the dataset already has for something else."""

from __future__ import annotations

from typing import Any

import pytest

from domain.dataset import DatasetDefinition
from domain.errors import TransformationError
from domain.transformation import Transformation
from tests.unit.domain.test_geometry_values import districts


def _points(*extra: dict[str, Any]) -> DatasetDefinition:
    return DatasetDefinition.from_dict(
        {
            "id": "hk.traffic.stops",
            "kind": "traffic",
            "owner_region": "hk",
            "title": "Stops",
            "time_field": "at",
            "key_fields": ["stop", "at"],
            "geometry": {"lat": "lat", "lon": "lon"},
            "fields": [
                {"name": "stop", "type": "string"},
                {"name": "at", "type": "timestamp"},
                {"name": "lat", "type": "float64"},
                {"name": "lon", "type": "float64"},
                *extra,
            ],
        }
    )


H3 = Transformation.from_dict({"kind": "coarsen_location", "h3_resolution": 7})
GRID = Transformation.from_dict({"kind": "coarsen_location", "grid_degrees": 0.01})


def test_points_may_be_coarsened_to_a_grid_or_cells() -> None:
    GRID.check_against(_points())
    H3.check_against(_points())


def test_a_geometry_field_is_coarsened_to_cells_not_a_grid() -> None:
    dataset = DatasetDefinition.from_dict(districts(h3_field="h3_cell", h3_resolution=8))
    H3.check_against(dataset)  # its h3_cell companion receives the coarse cell
    with pytest.raises(TransformationError, match="geometry field is coarsened with h3"):
        GRID.check_against(dataset)


def test_cells_are_not_written_over_a_field_of_another_meaning() -> None:
    with pytest.raises(TransformationError, match="has a field 'h3_cell'"):
        H3.check_against(_points({"name": "h3_cell", "type": "string"}))
    GRID.check_against(_points({"name": "h3_cell", "type": "string"}))
