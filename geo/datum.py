"""Datums of Chinese web maps: WGS84, GCJ-02 and BD-09, and conversions between them.

OSM, GPS receivers and this project's stores are WGS84. Positions from Amap (高德), Tencent (腾讯)
and WeChat (微信) are GCJ-02, the "Mars" datum: WGS84 moved by an obfuscation of a few hundred
metres (in Taiyuan about +0.0063° lon, +0.0005° lat, ≈ 560 m east). Baidu (百度) reshapes GCJ-02
once more into BD-09. Outside China GCJ-02 is WGS84 itself (BD-09 still reshapes it).

The arithmetic is PyPI ``prcoords`` (public domain; googollee's ``eviltransform`` gives the same
GCJ-02 numbers, but leaves BD-09 unshifted outside China); the inverses are prcoords' fixed-point
iterations (error < 1e-7°, a centimetre). prcoords works point by point, so arrays are converted
point by point too: about 6 µs a point from WGS84 and 20 µs to it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
import prcoords
import shapely
from shapely.geometry.base import BaseGeometry

G = TypeVar("G", bound=BaseGeometry)
_Point = Callable[[float, float], tuple[float, float]]


class Crs(StrEnum):
    """The datum of a longitude/latitude pair."""

    #: GPS, OSM, international maps; what this project stores.
    WGS84 = "wgs84"
    #: Amap (高德), Tencent (腾讯), WeChat (微信), Apple and Google maps in mainland China.
    GCJ02 = "gcj02"
    #: Baidu (百度) maps: GCJ-02 reshaped once more.
    BD09 = "bd09"


def in_china(lon: float, lat: float) -> bool:
    """Return whether a position lies in the box where GCJ-02 differs from WGS84.

    The box is prcoords' (and eviltransform's): 72.004–137.8347° E, 0.8293–55.8271° N. It is a
    box, not China's border, as in every implementation of GCJ-02.

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees, in any of the three datums (they differ by about a
        kilometre at most, which matters only at the edge of the box).
    """
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)))


def _wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    # prcoords.wgs_gcj checks the box itself but warns on every point outside it.
    if not in_china(lon, lat):
        return lon, lat
    c = prcoords.wgs_gcj(prcoords.Coords(lat, lon), False)
    return float(c.lon), float(c.lat)


def _gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    # prcoords.gcj_wgs_bored ignores its box check and would move points outside China.
    if not in_china(lon, lat):
        return lon, lat
    c = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    return float(c.lon), float(c.lat)


def _gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    c = prcoords.gcj_bd(prcoords.Coords(lat, lon))
    return float(c.lon), float(c.lat)


def _bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    c = prcoords.bd_gcj_bored(prcoords.Coords(lat, lon))
    return float(c.lon), float(c.lat)


def _wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


def _same(lon: float, lat: float) -> tuple[float, float]:
    return lon, lat


_TO_WGS84: dict[Crs, _Point] = {
    Crs.WGS84: _same, Crs.GCJ02: _gcj02_to_wgs84, Crs.BD09: _bd09_to_wgs84,
}
_FROM_WGS84: dict[Crs, _Point] = {
    Crs.WGS84: _same, Crs.GCJ02: _wgs84_to_gcj02, Crs.BD09: _wgs84_to_bd09,
}


def _apply(point: _Point, lon: Any, lat: Any) -> Any:
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return point(float(lon), float(lat))
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    if point is _same:
        return x.copy(), y.copy()
    xy = np.array([point(a, b) for a, b in zip(x.ravel().tolist(), y.ravel().tolist(),
                                                 strict=True)], dtype=float).reshape(-1, 2)
    return xy[:, 0].reshape(x.shape), xy[:, 1].reshape(x.shape)


@overload
def to_wgs84(lon: float, lat: float, *, crs: Crs | str) -> tuple[float, float]: ...
@overload
def to_wgs84(
    lon: np.ndarray, lat: np.ndarray, *, crs: Crs | str
) -> tuple[np.ndarray, np.ndarray]: ...
def to_wgs84(lon: Any, lat: Any, *, crs: Crs | str) -> Any:
    """Convert positions given in ``crs`` to WGS84.

    Parameters
    ----------
    lon, lat
        Longitudes and latitudes in degrees: scalars, or arrays (broadcast together).
    crs
        Their datum: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84: floats for scalars, arrays of the broadcast shape otherwise.

    Raises
    ------
    ValueError
        If ``crs`` is not one of the three.
    """
    return _apply(_TO_WGS84[Crs(crs)], lon, lat)


@overload
def from_wgs84(lon: float, lat: float, *, crs: Crs | str) -> tuple[float, float]: ...
@overload
def from_wgs84(
    lon: np.ndarray, lat: np.ndarray, *, crs: Crs | str
) -> tuple[np.ndarray, np.ndarray]: ...
def from_wgs84(lon: Any, lat: Any, *, crs: Crs | str) -> Any:
    """Convert WGS84 positions to ``crs``.

    Parameters
    ----------
    lon, lat
        WGS84 longitudes and latitudes in degrees: scalars, or arrays (broadcast together).
    crs
        The datum wanted: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    tuple
        ``(lon, lat)`` in ``crs``: floats for scalars, arrays of the broadcast shape otherwise.

    Raises
    ------
    ValueError
        If ``crs`` is not one of the three.
    """
    return _apply(_FROM_WGS84[Crs(crs)], lon, lat)


def _transform(geom: G, point: _Point) -> G:
    def move(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = _apply(point, xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, move)


def geometry_to_wgs84(geom: G, *, crs: Crs | str) -> G:
    """Return a copy of a shapely geometry with every vertex moved from ``crs`` to WGS84."""
    return _transform(geom, _TO_WGS84[Crs(crs)])


def geometry_from_wgs84(geom: G, *, crs: Crs | str) -> G:
    """Return a copy of a WGS84 shapely geometry with every vertex moved to ``crs``."""
    return _transform(geom, _FROM_WGS84[Crs(crs)])


def gcj02_to_wgs84_xy(lon: float, lat: float) -> tuple[float, float]:
    """Return the WGS84 ``(lon, lat)`` of a GCJ-02 position (iterative inverse, < 1 cm error)."""
    return to_wgs84(lon, lat, crs=Crs.GCJ02)


def gcj02_to_wgs84(geom: G) -> G:
    """Return a copy of a GCJ-02 geometry (e.g. a district outline) with its vertices in WGS84."""
    return geometry_to_wgs84(geom, crs=Crs.GCJ02)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def geojson_from_wgs84(obj: Any, *, crs: Crs | str, decimals: int | None = 6) -> Any:
    """Return a copy of a JSON answer with its WGS84 coordinates moved to ``crs``.

    Two kinds of coordinates are moved, at any depth: the positions of every GeoJSON geometry (an
    object with ``type`` and ``coordinates``; heights kept), and every object's ``lon``/``lat``
    pair of numbers. Everything else is copied unchanged.

    Parameters
    ----------
    obj
        A JSON-like value (dicts, lists, numbers, strings) with coordinates in WGS84.
    crs
        The datum wanted. For ``"wgs84"`` the object itself is returned, not a copy.
    decimals
        Round moved coordinates to this many decimals (6: about 0.1 m); ``None`` keeps them all.

    Returns
    -------
    object
        The same structure, in ``crs``.
    """
    point = _FROM_WGS84[Crs(crs)]
    if point is _same:
        return obj

    def pair(lon: float, lat: float) -> tuple[float, float]:
        x, y = point(float(lon), float(lat))
        return (x, y) if decimals is None else (round(x, decimals), round(y, decimals))

    def positions(coords: Any) -> Any:
        if isinstance(coords, list | tuple) and len(coords) >= 2 and _is_number(coords[0]):
            return [*pair(coords[0], coords[1]), *coords[2:]]
        if isinstance(coords, list | tuple):
            return [positions(c) for c in coords]
        return coords

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if isinstance(node.get("type"), str) and "coordinates" in node:
                out["coordinates"] = positions(node["coordinates"])
            if _is_number(node.get("lon")) and _is_number(node.get("lat")):
                out["lon"], out["lat"] = pair(node["lon"], node["lat"])
            return out
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node

    return walk(obj)
