"""Coordinate reference systems: names, their areas of use, and the way to WGS-84.

A CRS is named ``EPSG:<code>`` (any two-dimensional geographic or projected CRS in PROJ's
EPSG database) or ``GCJ-02`` (the offset datum of mainland Chinese maps, which has no EPSG
code). Every transformation runs with x = longitude or easting and y = latitude or northing
(pyproj's ``always_xy``), whatever axis order the CRS itself declares (EPSG:2326 puts
northing first). A source's CRS is always declared, never guessed from where its points lie:
GCJ-02 offsets are applied inside Hong Kong and Macao too when a source says GCJ-02.

GCJ-02 goes through ``prcoords``' forward model (``wgs_gcj``), inverted by fixed-point
iteration as its ``gcj_wgs_bored`` does, but always with the offset applied (its own inverse
warns and returns the input unchanged outside China): a WGS-84 → GCJ-02 → WGS-84 round trip
agrees within GCJ02_ROUND_TRIP_METRES.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import prcoords
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as ProjCrsError

from connectors.errors import ConnectorError
from domain.geo import WGS84, WGS84_BOUNDS

GCJ02 = "GCJ-02"
# Where prcoords treats coordinates as Chinese (its sanity_in_china_p box), as (west, south,
# east, north): the only area GCJ-02 offsets are defined for.
GCJ02_BOUNDS = (72.004, 0.8293, 137.8347, 55.8271)
GCJ02_ROUND_TRIP_METRES = 0.001
"""How far a WGS-84 → GCJ-02 → WGS-84 round trip may land from where it began (tested)."""

# pyproj's to_epsg confidence (0-100) a described CRS must reach to be taken as that code.
_EPSG_MATCH_CONFIDENCE = 70
_GCJ02_MAX_STEPS = 12
_GCJ02_EPSILON = 1e-10  # degrees, about 0.01 mm
_EPSG = re.compile(r"^EPSG:(\d{4,6})$")
_EARTH_RADIUS_M = 6_371_008.8
Floats = NDArray[np.float64]


class CrsError(ConnectorError):
    """A CRS name that is malformed, unknown to PROJ's EPSG database, or not two-dimensional."""


def crs_name(text: str) -> str:
    """The canonical name of a CRS (``EPSG:2326``, ``GCJ-02``); CrsError saying why not.

    ``epsg:2326`` and surrounding spaces are accepted; the code must be in PROJ's EPSG
    database and name a 2D geographic or projected CRS.
    """
    if not isinstance(text, str):
        raise CrsError(f"a CRS name must be text, got {type(text).__name__}")
    name = text.strip()
    if name.upper() in (GCJ02, "GCJ02"):
        return GCJ02
    match = _EPSG.match(name.upper())
    if match is None:
        raise CrsError(
            f"{text!r} is not a CRS name: expected EPSG:<code> (e.g. EPSG:2326) or GCJ-02"
        )
    canonical = f"EPSG:{int(match.group(1))}"
    _checked_crs(canonical)
    return canonical


def identified_crs(definition: str | dict[str, object]) -> str:
    """The canonical name of a CRS a file describes in full (WKT, a .prj, PROJJSON), found by
    its EPSG identity; CrsError when PROJ cannot match it to one EPSG code with confidence.
    OGC:CRS84 (longitude/latitude on WGS-84) is EPSG:4326, which is read lon/lat here too."""
    text = json.dumps(definition, sort_keys=True) if isinstance(definition, dict) else definition
    return _identified(text, isinstance(definition, dict))


@lru_cache(maxsize=256)
def _identified(text: str, projjson: bool) -> str:
    # Matching a description to an EPSG code searches PROJ's database: worth remembering.
    try:
        crs = CRS.from_json(text) if projjson else CRS(text)
    except (ProjCrsError, TypeError, ValueError) as error:
        raise CrsError(f"the CRS description cannot be read: {str(error)[:160]}") from None
    if crs.to_authority() == ("OGC", "CRS84"):
        return WGS84
    code = crs.to_epsg(min_confidence=_EPSG_MATCH_CONFIDENCE)
    if code is None:
        raise CrsError(
            f"the CRS {crs.name!r} matches no EPSG code closely enough; "
            "declare it with --crs EPSG:<code>"
        )
    return crs_name(f"EPSG:{code}")


@lru_cache(maxsize=64)
def _checked_crs(name: str) -> CRS:
    try:
        crs = CRS.from_user_input(name)
    except ProjCrsError:
        raise CrsError(f"{name} is not in PROJ's EPSG database") from None
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) != 2:
        raise CrsError(f"{name} ({crs.name}) is not a two-dimensional geographic or projected CRS")
    if crs.area_of_use is None:
        raise CrsError(f"{name} ({crs.name}) declares no area of use")
    return crs


@dataclass(frozen=True)
class CoordinateTransform:
    """How one CRS reaches WGS-84, and the area (in that CRS's units) it is valid for."""

    crs: str
    bounds: tuple[float, float, float, float]
    _transformer: Transformer | None

    def to_wgs84(
        self, xs: Sequence[float] | Floats, ys: Sequence[float] | Floats
    ) -> tuple[Floats, Floats]:
        """Longitudes and latitudes of the given x (easting/lon) and y (northing/lat)."""
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        if self.crs == GCJ02:
            return _gcj02_to_wgs84(x, y)
        if self._transformer is None:
            return x.copy(), y.copy()
        lons, lats = self._transformer.transform(x, y, errcheck=False)
        return np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)

    def within(self, xs: Floats, ys: Floats, slack: float = 0.0) -> bool:
        """Whether every coordinate lies inside the CRS's area of use (edges included),
        widened by ``slack`` times each edge's magnitude (at least 1)."""
        min_x, min_y, max_x, max_y = self._widened(slack)
        inside_x = np.all((xs >= min_x) & (xs <= max_x))
        return bool(inside_x and np.all((ys >= min_y) & (ys <= max_y)))

    def clamped(self, coords: Floats) -> Floats:
        """``coords`` (x, y rows) moved onto the area of use where they lie past its edge."""
        min_x, min_y, max_x, max_y = self.bounds
        return np.column_stack(
            [np.clip(coords[:, 0], min_x, max_x), np.clip(coords[:, 1], min_y, max_y)]
        )

    def _widened(self, slack: float) -> tuple[float, float, float, float]:
        min_x, min_y, max_x, max_y = self.bounds
        return (
            min_x - slack * max(1.0, abs(min_x)),
            min_y - slack * max(1.0, abs(min_y)),
            max_x + slack * max(1.0, abs(max_x)),
            max_y + slack * max(1.0, abs(max_y)),
        )


@lru_cache(maxsize=64)
def transform_for(crs: str) -> CoordinateTransform:
    """The (cached, thread-safe) transformation of a CRS named as ``crs_name`` accepts."""
    name = crs_name(crs)
    if name == GCJ02:
        return CoordinateTransform(GCJ02, GCJ02_BOUNDS, None)
    if name == WGS84:
        return CoordinateTransform(WGS84, WGS84_BOUNDS, None)
    source = _checked_crs(name)
    to_wgs84 = Transformer.from_crs(source, WGS84, always_xy=True)
    area = source.area_of_use
    assert area is not None  # _checked_crs refuses a CRS without one
    if source.is_geographic:
        bounds = (area.west, area.south, area.east, area.north)
    else:
        from_wgs84 = Transformer.from_crs(WGS84, source, always_xy=True)
        min_x, min_y, max_x, max_y = from_wgs84.transform_bounds(
            area.west, area.south, area.east, area.north
        )
        bounds = (float(min_x), float(min_y), float(max_x), float(max_y))
    return CoordinateTransform(name, bounds, to_wgs84)


def _gcj02_to_wgs84(xs: Floats, ys: Floats) -> tuple[Floats, Floats]:
    lons = np.empty_like(xs)
    lats = np.empty_like(ys)
    for i, (x, y) in enumerate(zip(xs.tolist(), ys.tolist(), strict=True)):
        if math.isfinite(x) and math.isfinite(y):
            lons[i], lats[i] = _gcj02_point_to_wgs84(x, y)
        else:
            lons[i], lats[i] = math.nan, math.nan
    return lons, lats


def _gcj02_point_to_wgs84(x: float, y: float) -> tuple[float, float]:
    # The offset varies slowly, so subtracting the offset at the current estimate converges
    # in a few steps; check_china=False because the source declared GCJ-02.
    lon, lat = x, y
    for _ in range(_GCJ02_MAX_STEPS):
        shifted_lat, shifted_lon = prcoords.wgs_gcj((lat, lon), False)
        d_lon, d_lat = shifted_lon - x, shifted_lat - y
        lon, lat = lon - d_lon, lat - d_lat
        if abs(d_lon) < _GCJ02_EPSILON and abs(d_lat) < _GCJ02_EPSILON:
            break
    return lon, lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 form of a WGS-84 point, as (lon, lat): what mainland map services show."""
    lat_out, lon_out = prcoords.wgs_gcj((lat, lon), False)
    return float(lon_out), float(lat_out)


def metres_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius (fine below a few km)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class ProjNormaliser:
    """The domain's CoordinateNormaliser for every CRS this module names (EPSG and GCJ-02)."""

    def bounds(self, crs: str) -> tuple[float, float, float, float]:
        try:
            return transform_for(crs).bounds
        except CrsError as error:
            raise ValueError(str(error)) from None

    def to_wgs84(
        self, crs: str, xs: Sequence[float], ys: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        try:
            lons, lats = transform_for(crs).to_wgs84(xs, ys)
        except CrsError as error:
            raise ValueError(str(error)) from None
        return lons.tolist(), lats.tolist()
