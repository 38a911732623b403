"""Coordinates: the domain only needs to know a CRS's valid area and how to reach WGS-84."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

WGS84 = "EPSG:4326"
WGS84_BOUNDS = (-180.0, -90.0, 180.0, 90.0)


class CoordinateNormaliser(Protocol):
    """Knows the valid area of a CRS and converts its coordinates to WGS-84 (x = lon, y = lat)."""

    def bounds(self, crs: str) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of the CRS's area of use, in that CRS's units."""
        ...

    def to_wgs84(
        self, crs: str, xs: Sequence[float], ys: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        """Longitudes and latitudes for the given x (easting/lon) and y (northing/lat)."""
        ...


class Wgs84Only:
    """The normaliser for deployments whose every source already speaks WGS-84."""

    def bounds(self, crs: str) -> tuple[float, float, float, float]:
        if crs != WGS84:
            raise ValueError(f"no coordinate normaliser is configured for {crs}")
        return WGS84_BOUNDS

    def to_wgs84(
        self, crs: str, xs: Sequence[float], ys: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        if crs != WGS84:
            raise ValueError(f"no coordinate normaliser is configured for {crs}")
        return list(xs), list(ys)
