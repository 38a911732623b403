"""What one decision lets its caller see of one dataset, as the query API applies it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.agreement import RowScope
from domain.dataset import DatasetDefinition
from domain.policy import Decision
from domain.transformation import TransformationKind


@dataclass(frozen=True)
class Grant:
    """A dataset and the decision on what of it the caller may see."""

    dataset: DatasetDefinition
    decision: Decision

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields the caller receives (decided, less those an agreement drops)."""
        dropped = {
            t.field for t in self.decision.transformations if t.kind is TransformationKind.DROP
        }
        return tuple(name for name in self.applied.columns if name not in dropped)

    @property
    def applied(self) -> Decision:
        """The decision as this API applies it. Coarsening to H3 cells needs the H3 view,
        which the query API does not have: the location is withheld instead, never sent
        finer than granted."""
        transformations = self.decision.transformations
        geometry = self.dataset.geometry
        h3 = [
            t
            for t in transformations
            if t.kind is TransformationKind.COARSEN_LOCATION and "h3_resolution" in t.params
        ]
        if not h3 or geometry is None:
            return self.decision
        hidden = {geometry.lat, geometry.lon}
        return replace(
            self.decision,
            columns=tuple(c for c in self.decision.columns if c not in hidden),
            transformations=tuple(t for t in transformations if t not in h3),
        )

    @property
    def summarised(self) -> bool:
        return any(t.kind is TransformationKind.AGGREGATE for t in self.decision.transformations)

    @property
    def coarse_location(self) -> bool:
        return any(
            t.kind is TransformationKind.COARSEN_LOCATION for t in self.decision.transformations
        )

    @property
    def coarse_time(self) -> bool:
        return any(
            t.kind is TransformationKind.COARSEN_TIME and t.field == self.dataset.time_field
            for t in self.decision.transformations
        )

    @property
    def plain_fields(self) -> frozenset[str]:
        """Fields delivered exactly as stored: the only ones filters and aggregates may use,
        or a filter could be narrowed until it gives away the value a transformation hides."""
        if self.summarised:
            return frozenset()
        transformed = {t.field for t in self.decision.transformations if t.field is not None}
        geometry = self.dataset.geometry
        if self.coarse_location and geometry is not None:
            transformed |= {geometry.lat, geometry.lon}
        return frozenset(self.fields) - transformed

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
