"""Transformations an agreement requires before a partner sees a record.

They are values here: what to do to which field, checked against the dataset's schema when an
agreement is written. Applying them is the job of the enforcement points (query API, delivery
relay), which all read the same values from a policy decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import Any

from domain.dataset import DatasetDefinition, FieldType
from domain.errors import TransformationError

TIME_UNITS = ("minute", "hour", "day")
AGGREGATES = ("count", "sum", "mean", "min", "max")
H3_CELL_COLUMN = "h3_cell"
"""The column an H3 coarsening fills with the cell's index (added, or a geometry's H3
companion field of that name)."""


class TransformationKind(StrEnum):
    """What happens to a field (or, for aggregation, to the rows)."""

    DROP = "drop"  # the field is not delivered
    MASK = "mask"  # the value is replaced, keeping at most its last `keep` characters
    PSEUDONYMISE = "pseudonymise"  # a keyed hash, the key distinct per consumer
    COARSEN_LOCATION = "coarsen_location"  # to a grid (`grid_degrees`) or H3 cell (`h3_resolution`)
    COARSEN_TIME = "coarsen_time"  # truncated to the `unit`
    AGGREGATE = "aggregate"  # rows summarised per `window` and `group_by`, `min_count` each


@dataclass(frozen=True, slots=True)
class Transformation:
    """One required transformation; ``params`` depend on the kind (see TransformationKind)."""

    kind: TransformationKind
    field: str | None = None
    params: Mapping[str, Any] = dataclass_field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.field is not None:
            out["field"] = self.field
        out.update(sorted(self.params.items()))
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Transformation:
        if not isinstance(raw, Mapping) or "kind" not in raw:
            raise TransformationError(f"a transformation is a mapping with a kind, got {raw!r}")
        try:
            kind = TransformationKind(raw["kind"])
        except ValueError:
            known = ", ".join(k.value for k in TransformationKind)
            raise TransformationError(
                f"unknown transformation {raw['kind']!r}; expected one of {known}"
            ) from None
        name = raw.get("field")
        params = {k: v for k, v in raw.items() if k not in ("kind", "field")}
        return cls(kind, None if name is None else str(name), params)

    def check_against(self, dataset: DatasetDefinition) -> None:
        """Raise TransformationError unless this transformation fits the dataset's schema."""
        where = f"{self.kind.value} on {dataset.id}"
        if self.kind is TransformationKind.COARSEN_LOCATION:
            self._check_location(dataset, where)
            return
        if self.kind is TransformationKind.AGGREGATE:
            self._check_aggregate(dataset, where)
            return
        if self.field is None or not dataset.has_field(self.field):
            raise TransformationError(f"{where}: names no field of the dataset ({self.field!r})")
        spec = dataset.field(self.field)
        if self.kind is TransformationKind.MASK:
            keep = self.params.get("keep", 0)
            if type(keep) is not int or not 0 <= keep <= 8:
                raise TransformationError(f"{where}: keep is a whole number from 0 to 8")
        if self.kind in (TransformationKind.MASK, TransformationKind.PSEUDONYMISE) and (
            spec.type is not FieldType.STRING
        ):
            raise TransformationError(f"{where}: {self.field} is {spec.type}, not a string")
        if self.kind is TransformationKind.COARSEN_TIME:
            if spec.type is not FieldType.TIMESTAMP:
                raise TransformationError(f"{where}: {self.field} is not a timestamp")
            if self.params.get("unit") not in TIME_UNITS:
                raise TransformationError(f"{where}: unit is one of {', '.join(TIME_UNITS)}")

    def _check_location(self, dataset: DatasetDefinition, where: str) -> None:
        if dataset.geometry is None and dataset.feature_geometry is None:
            raise TransformationError(f"{where}: the dataset has no location")
        grid = self.params.get("grid_degrees")
        resolution = self.params.get("h3_resolution")
        if (grid is None) == (resolution is None):
            raise TransformationError(f"{where}: give exactly one of grid_degrees, h3_resolution")
        if grid is not None and dataset.geometry is None:
            raise TransformationError(
                f"{where}: a grid coarsens lat/lon points; a geometry field is coarsened "
                "with h3_resolution"
            )
        feature = dataset.feature_geometry
        companion = None if feature is None else feature.h3_field
        if (
            resolution is not None
            and dataset.has_field(H3_CELL_COLUMN)
            and companion != H3_CELL_COLUMN
        ):
            raise TransformationError(
                f"{where}: the dataset has a field {H3_CELL_COLUMN!r}, the column an H3 "
                "coarsening fills with the cell"
            )
        if grid is not None and not (
            isinstance(grid, int | float) and not isinstance(grid, bool) and 0 < grid <= 10
        ):
            raise TransformationError(f"{where}: grid_degrees is a number in (0, 10]")
        if resolution is not None and (type(resolution) is not int or not 0 <= resolution <= 15):
            raise TransformationError(f"{where}: h3_resolution is a whole number from 0 to 15")

    def _check_aggregate(self, dataset: DatasetDefinition, where: str) -> None:
        window = self.params.get("window")
        if window not in TIME_UNITS:
            raise TransformationError(f"{where}: window is one of {', '.join(TIME_UNITS)}")
        group_by = self.params.get("group_by", [])
        if not isinstance(group_by, list) or not all(dataset.has_field(str(g)) for g in group_by):
            raise TransformationError(f"{where}: group_by lists fields of the dataset")
        min_count = self.params.get("min_count")
        if type(min_count) is not int or min_count < 1:
            raise TransformationError(f"{where}: min_count is a whole number of at least 1")
        measures = self.params.get("measures", {})
        if not isinstance(measures, Mapping) or any(
            not dataset.has_field(str(name)) or how not in AGGREGATES
            for name, how in measures.items()
        ):
            raise TransformationError(
                f"{where}: measures map fields of the dataset to one of {', '.join(AGGREGATES)}"
            )
