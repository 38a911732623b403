"""Geometry values: a GeoJSON geometry (RFC 7946) in WGS-84, checked and made canonical.

A geometry field's value on the wire and in the store is a mapping ``{"type": ...,
"coordinates": ...}`` with longitude/latitude positions of exactly two finite numbers. The
canonical form has those two keys in that order, floats only and lists only, so the same
shape always encodes to the same bytes (record ids, batch digests). Only structure is
checked here; whether a polygon is topologically valid is the connectors' business (they
repair with a geometry engine, which the domain does not depend on).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from domain.errors import DomainError
from domain.rejection import RejectionReason

GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
)
MAX_POSITIONS = 1_000_000
"""Most positions one geometry value may hold."""

Position = list[float]
Coordinates = list[object]


class GeometryInspector(Protocol):
    """Judges what the domain cannot: whether a well-formed geometry is topologically valid
    (rings that do not cross themselves, holes inside their shells)."""

    def problem(self, geometry: Mapping[str, object]) -> str | None:
        """Why the canonical ``geometry`` is invalid, or None when it is valid."""
        ...


class InvalidGeometryError(DomainError):
    """A value that is not a GeoJSON geometry in WGS-84 this platform stores."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Counter:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_POSITIONS


def _invalid(message: str) -> InvalidGeometryError:
    return InvalidGeometryError(RejectionReason.INVALID_GEOMETRY, message)


def _sequence(value: object, what: str) -> Sequence[object]:
    if type(value) is list or type(value) is tuple:
        return value
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise _invalid(f"{what} must be a list, got {type(value).__name__}")
    return value


def _position(value: object, where: str, counter: _Counter, index: int = -1) -> Position:
    # The common case first: two floats inside WGS-84 (NaN fails the comparisons).
    if (type(value) is list or type(value) is tuple) and len(value) == 2:
        lon, lat = value
        if (
            type(lon) is float
            and type(lat) is float
            and -180.0 <= lon <= 180.0
            and -90.0 <= lat <= 90.0
            and counter.left > 0
        ):
            counter.left -= 1
            return [lon, lat]
    return _any_position(value, where if index < 0 else f"{where}[{index}]", counter)


def _any_position(value: object, where: str, counter: _Counter) -> Position:
    items = _sequence(value, f"position {where}")
    if len(items) != 2:
        raise _invalid(f"position {where} must be [longitude, latitude], got {len(items)} numbers")
    out: Position = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _invalid(f"position {where} holds {type(item).__name__}, not a number")
        try:
            number = float(item)
        except OverflowError:
            raise InvalidGeometryError(
                RejectionReason.OUT_OF_RANGE, f"position {where} does not fit in a float"
            ) from None
        if not math.isfinite(number):
            raise InvalidGeometryError(
                RejectionReason.NOT_FINITE, f"position {where} holds {number}, not a finite number"
            )
        out.append(number)
    lon, lat = out
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidGeometryError(
            RejectionReason.COORDINATES_OUT_OF_AREA,
            f"position {where} ({lon}, {lat}) lies outside WGS-84 longitude/latitude",
        )
    counter.left -= 1
    if counter.left < 0:
        raise InvalidGeometryError(
            RejectionReason.OUT_OF_RANGE, f"the geometry holds more than {MAX_POSITIONS} positions"
        )
    return out


def _positions(value: object, where: str, counter: _Counter, least: int) -> list[Position]:
    items = _sequence(value, where)
    if len(items) < least:
        raise _invalid(f"{where} needs at least {least} positions, got {len(items)}")
    return [_position(item, where, counter, i) for i, item in enumerate(items)]


def _line(value: object, where: str, counter: _Counter) -> list[Position]:
    return _positions(value, where, counter, 2)


def _ring(value: object, where: str, counter: _Counter) -> list[Position]:
    ring = _positions(value, where, counter, 4)
    if ring[0] != ring[-1]:
        raise _invalid(f"{where} is not closed: its first and last positions differ")
    return ring


def _polygon(value: object, where: str, counter: _Counter) -> list[list[Position]]:
    rings = _sequence(value, where)
    if not rings:
        raise _invalid(f"{where} has no rings")
    return [_ring(ring, f"{where}[{i}]", counter) for i, ring in enumerate(rings)]


def _many(
    part: Callable[[object, str, _Counter], object],
) -> Callable[[object, str, _Counter], list[object]]:
    def parts(value: object, where: str, counter: _Counter) -> list[object]:
        items = _sequence(value, where)
        if not items:
            raise _invalid(f"{where} is empty; send null for a missing geometry")
        return [part(item, f"{where}[{i}]", counter) for i, item in enumerate(items)]

    return parts


_READERS: dict[str, Callable[[object, str, _Counter], object]] = {
    "Point": _position,
    "MultiPoint": _many(_position),
    "LineString": _line,
    "MultiLineString": _many(_line),
    "Polygon": _polygon,
    "MultiPolygon": _many(_polygon),
}


def canonical_geometry(value: object) -> dict[str, object]:
    """The canonical form of a GeoJSON geometry in WGS-84; InvalidGeometryError saying why not.

    A ``bbox`` member is dropped (it is derived); any other member besides ``type`` and
    ``coordinates`` (a ``crs``, nested ``geometries``) is refused, since coordinates here are
    WGS-84 longitude/latitude by definition.
    """
    if not isinstance(value, Mapping):
        raise InvalidGeometryError(
            RejectionReason.WRONG_TYPE,
            f"a geometry must be a GeoJSON geometry mapping, got {type(value).__name__}",
        )
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _READERS:
        known = ", ".join(GEOMETRY_TYPES)
        raise _invalid(f"geometry type {str(kind)[:40]!r} is not one of {known}")
    unknown = sorted(str(k)[:40] for k in value if k not in ("type", "coordinates", "bbox"))
    if unknown:
        raise _invalid(f"a {kind} geometry may hold only type and coordinates, not {unknown}")
    if "coordinates" not in value:
        raise _invalid(f"the {kind} geometry has no coordinates")
    coordinates = _READERS[kind](value["coordinates"], "coordinates", _Counter())
    return {"type": kind, "coordinates": coordinates}


def inspected(inspector: GeometryInspector) -> Callable[[object], dict[str, object]]:
    """``canonical_geometry`` followed by the inspector's verdict."""

    def check(value: object) -> dict[str, object]:
        geometry = canonical_geometry(value)
        problem = inspector.problem(geometry)
        if problem is not None:
            raise _invalid(f"the {geometry['type']} is not valid: {problem}")
        return geometry

    return check
