"""The geometry engine's verdict on geometry values, for the ingest worker's validator."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely
from shapely.geometry import shape


class ShapelyInspector:
    """The domain's GeometryInspector: GEOS's validity rules (OGC simple features)."""

    def problem(self, geometry: Mapping[str, object]) -> str | None:
        with np.errstate(invalid="ignore", over="ignore"):
            built = shape(dict(geometry))
            if shapely.is_valid(built):
                return None
            return str(shapely.is_valid_reason(built))
