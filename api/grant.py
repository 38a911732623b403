"""What one decision lets its caller see of one dataset, as the query API applies it."""

from __future__ import annotations

from dataclasses import dataclass

from domain.agreement import RowScope
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.policy import Decision
from domain.transformation import H3_CELL_COLUMN, Transformation, TransformationKind


@dataclass(frozen=True)
class Grant:
    """A dataset and the decision on what of it the caller may see."""

    dataset: DatasetDefinition
    decision: Decision
    purpose: str | None = None  # the agreement's, when the decision rests on one

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields the caller receives (decided, less those an agreement drops), and the H3
        cell where the location is coarsened to one."""
        dropped = {
            t.field for t in self.decision.transformations if t.kind is TransformationKind.DROP
        }
        kept = tuple(name for name in self.decision.columns if name not in dropped)
        if H3_CELL_COLUMN not in kept and self._receives_cell(set(kept)):
            return (*kept, H3_CELL_COLUMN)
        return kept

    @property
    def h3_resolution(self) -> int | None:
        """The resolution of the H3 cells the location is coarsened to, if it is."""
        for t in self.decision.transformations:
            if t.kind is TransformationKind.COARSEN_LOCATION and "h3_resolution" in t.params:
                return int(t.params["h3_resolution"])
        return None

    def _receives_cell(self, columns: set[str]) -> bool:
        """Whether the caller receives an ``h3_cell`` column: an H3 coarsening of a location
        it receives (both coordinates, or the geometry field; see storage.policy_view)."""
        if self.h3_resolution is None or self.summarised:
            return False
        point, feature = self.dataset.geometry, self.dataset.feature_geometry
        if point is not None:
            return {point.lat, point.lon} <= columns
        return feature is not None and feature.field in columns

    @property
    def received_classification(self) -> Classification:
        """The most protected level among the fields the caller receives (the H3 cell counts
        as the location it comes from)."""
        point, feature = self.dataset.geometry, self.dataset.feature_geometry
        location = (
            (point.lat, point.lon) if point is not None else (feature.field,) if feature else ()
        )
        received_names = self.fields
        for t in self.decision.transformations:
            if t.kind is TransformationKind.AGGREGATE:  # only the groups and measures
                summarised = {self.dataset.time_field, *t.params.get("group_by", [])}
                summarised |= set(t.params.get("measures", {}))
                received_names = tuple(n for n in received_names if n in summarised)
        names = {n for n in received_names if self.dataset.has_field(n)}
        if H3_CELL_COLUMN in received_names:
            names |= set(location)
        levels = [self.dataset.field(name).classification for name in names]
        return max(levels, default=Classification.PUBLIC)

    @property
    def coarsening(self) -> Transformation | None:
        """The transformation coarsening the location (to a grid or H3 cells), if any."""
        for t in self.decision.transformations:
            if t.kind is TransformationKind.COARSEN_LOCATION:
                return t
        return None

    @property
    def withholds_location(self) -> bool:
        """Whether the dataset has a location the caller does not receive (in full): a box
        filter would then tell it where records are."""
        point, feature = self.dataset.geometry, self.dataset.feature_geometry
        fields = set(self.fields)
        if point is not None:
            return not {point.lat, point.lon} <= fields
        return feature is not None and feature.field not in fields

    @property
    def summarised(self) -> bool:
        return any(t.kind is TransformationKind.AGGREGATE for t in self.decision.transformations)

    @property
    def time_unit(self) -> str | None:
        """The unit the time field is coarsened to (minute, hour or day), if it is."""
        for t in self.decision.transformations:
            if t.kind is TransformationKind.COARSEN_TIME and t.field == self.dataset.time_field:
                return str(t.params["unit"])
        return None

    @property
    def plain_fields(self) -> frozenset[str]:
        """Fields delivered exactly as stored: the only ones filters and aggregates may use,
        or a filter could be narrowed until it gives away the value a transformation hides."""
        if self.summarised:
            return frozenset()
        transformed = {t.field for t in self.decision.transformations if t.field is not None}
        geometry, feature = self.dataset.geometry, self.dataset.feature_geometry
        if self.coarsening is not None and geometry is not None:
            transformed |= {geometry.lat, geometry.lon}
        if self.coarsening is not None and feature is not None:
            transformed |= {n for n in (feature.field, feature.h3_field) if n is not None}
        # The cell is derived in the view, after the query: nothing filters or groups by it.
        return frozenset(self.fields) - transformed - {H3_CELL_COLUMN}

    @property
    def whole(self) -> bool:
        """Every field untransformed and no limit on rows but regions: whole files may go."""
        scope = self.decision.row_scope
        return (
            set(self.decision.columns) == set(self.dataset.field_names)
            and not self.decision.transformations
            and scope.bbox is None
            and scope.start is None
            and scope.end is None
        )

    @property
    def limits_rows(self) -> bool:
        return self.decision.row_scope != RowScope()

    @property
    def limits_rows_within_files(self) -> bool:
        """Whether the grant cuts through files (by box or time), so their counts are not
        the caller's to see."""
        scope = self.decision.row_scope
        return scope.bbox is not None or scope.start is not None or scope.end is not None

    def reaches_region(self, region: str) -> bool:
        regions = self.decision.row_scope.regions
        return regions is None or region in regions
