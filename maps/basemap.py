"""Draw a vector basemap from the district's own OSM data, so the map needs no tile server."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

import data
from geo import District

#: Street classes of the basemap, from the widest to the narrowest.
STREET_CLASSES: dict[str, tuple[str, ...]] = {
    "major": ("motorway", "trunk", "primary", "secondary", "motorway_link", "trunk_link",
              "primary_link", "secondary_link"),
    "minor": ("tertiary", "tertiary_link", "residential", "unclassified", "living_street",
              "road", "service"),
    "path": ("footway", "path", "pedestrian", "steps", "cycleway", "track", "bridleway",
             "corridor"),
}
_WATER_NATURAL = ("water", "wetland")
_WATER_LANDUSE = ("reservoir", "basin")
_WATERWAYS = ("river", "stream", "canal", "ditch", "drain")
_GREEN_LEISURE = ("park", "garden", "playground", "pitch", "track", "stadium", "nature_reserve",
                  "recreation_ground")
_GREEN_LANDUSE = ("grass", "recreation_ground", "meadow", "forest", "village_green", "cemetery",
                  "orchard")
_GREEN_NATURAL = ("wood", "scrub", "grassland")
#: Simplification tolerance in degrees (about 2 m at Taiyuan's latitude) and output precision.
_TOLERANCE_DEG = 2e-5
_DECIMALS = 5


@dataclass(frozen=True)
class Basemap:
    """GeoJSON FeatureCollections of the basemap layers (WGS84, lon/lat).

    ``streets`` has one MultiLineString per street class and name (``k``: ``major``,
    ``minor`` or ``path``; ``name``); ``water`` one MultiPolygon (``k``: ``area``) and one
    MultiLineString (``k``: ``line``); ``green`` and ``buildings`` one MultiPolygon each.
    """

    streets: dict[str, Any]
    water: dict[str, Any]
    green: dict[str, Any]
    buildings: dict[str, Any]

    def layers(self) -> dict[str, dict[str, Any]]:
        """Return the layers by name, drawn in this order (lowest first)."""
        return {"green": self.green, "water": self.water, "buildings": self.buildings,
                "streets": self.streets}

    def feature_count(self) -> int:
        """Count the features of all layers."""
        return sum(len(fc["features"]) for fc in self.layers().values())


def street_class(highway: object) -> str:
    """Return the basemap class of an OSM ``highway`` value (the first one if several)."""
    first = str(highway or "").split(";")[0].strip()
    for cls, values in STREET_CLASSES.items():
        if first in values:
            return cls
    return "minor"


def _round(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.round(xy, _DECIMALS))


def _collection(geoms: Iterable[BaseGeometry], props: Iterable[dict[str, Any]]) -> dict[str, Any]:
    features = []
    for geom, prop in zip(geoms, props, strict=True):
        if geom is None or geom.is_empty:
            continue
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(geom),
                         "properties": prop})
    return {"type": "FeatureCollection", "features": features}


def _simplified(geoms: gpd.GeoSeries, tolerance: float) -> list[BaseGeometry]:
    simple = shapely.simplify(geoms.to_numpy(), tolerance, preserve_topology=True)
    return [_round(g) for g in simple]


def streets_layer(edges: gpd.GeoDataFrame, *, tolerance: float = _TOLERANCE_DEG) -> dict[str, Any]:
    """Streets of the walking network: one MultiLineString per class and name, widest last."""
    cls = edges["highway"].map(street_class) if "highway" in edges else pd.Series(
        "minor", index=edges.index)
    names = edges["name"].fillna("").astype(str) if "name" in edges else pd.Series(
        "", index=edges.index)
    names = names.str.split(";").str[0].str.strip()
    simple = pd.Series(_simplified(edges.geometry, tolerance), index=edges.index)
    geoms, props = [], []
    for k in ("path", "minor", "major"):
        of_class = cls == k
        for name, idx in names[of_class].groupby(names[of_class], sort=True).groups.items():
            geoms.append(shapely.multilinestrings(list(simple[idx])))
            props.append({"k": k, "name": str(name)} if name else {"k": k})
    return _collection(geoms, props)


def _clip(gdf: gpd.GeoDataFrame, bbox: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    gdf = gdf[gdf.intersects(shapely.box(*bbox))].copy()
    gdf["geometry"] = shapely.clip_by_rect(gdf.geometry.to_numpy(), *bbox)
    return gdf[~gdf.geometry.is_empty]


def _has(col: pd.Series, values: tuple[str, ...]) -> pd.Series:
    return col.fillna("").astype(str).isin(values)


def _tag(other_tags: pd.Series, key: str, values: tuple[str, ...]) -> pd.Series:
    pattern = "|".join(f'"{key}"=>"{v}"' for v in values)
    return other_tags.fillna("").astype(str).str.contains(pattern, regex=True)


def area_layers(
    polygons: gpd.GeoDataFrame,
    lines: gpd.GeoDataFrame,
    bbox: tuple[float, float, float, float],
    *,
    tolerance: float = _TOLERANCE_DEG,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Water, green areas and buildings from GDAL OSM ``multipolygons`` and ``lines`` layers.

    Parameters
    ----------
    polygons, lines
        GDAL OSM layers (WGS84) with their tag columns and ``other_tags``.
    bbox
        ``(west, south, east, north)`` to clip to.

    Returns
    -------
    water, green, buildings
        GeoJSON FeatureCollections.
    """
    polys = _clip(polygons, bbox)
    col = {c: polys[c] if c in polys else pd.Series("", index=polys.index)
           for c in ("natural", "landuse", "leisure", "building", "other_tags")}
    water_mask = (_has(col["natural"], _WATER_NATURAL) | _has(col["landuse"], _WATER_LANDUSE)
                  | _tag(col["other_tags"], "water", ("river", "lake", "pond", "reservoir",
                                                        "canal", "basin"))
                  | _tag(col["other_tags"], "waterway", ("riverbank",)))
    green_mask = (_has(col["leisure"], _GREEN_LEISURE) | _has(col["landuse"], _GREEN_LANDUSE)
                  | _has(col["natural"], _GREEN_NATURAL)) & ~water_mask
    building_mask = (col["building"].fillna("").astype(str) != "") & ~water_mask & ~green_mask

    ways = lines[_has(lines["waterway"], _WATERWAYS)] if "waterway" in lines else lines.iloc[:0]
    ways = _clip(ways, bbox)
    water_areas = _merged(_simplified(polys.geometry[water_mask], tolerance))
    water_lines = _merged(_simplified(ways.geometry, tolerance))
    water = _collection([water_areas, water_lines], [{"k": "area"}, {"k": "line"}])
    green = _collection([_merged(_simplified(polys.geometry[green_mask], tolerance))], [{}])
    buildings = _collection(
        [_merged(_simplified(polys.geometry[building_mask], tolerance / 2))], [{}])
    return water, green, buildings


def _merged(geoms: list[BaseGeometry]) -> BaseGeometry:
    """One multi-geometry of all parts: one Leaflet layer to build and draw instead of many."""
    parts = [p for g in geoms if g is not None and not g.is_empty
             for p in shapely.get_parts(g)]
    polygons = [p for p in parts if p.geom_type == "Polygon"]
    lines = [p for p in parts if p.geom_type == "LineString"]
    if polygons:  # dissolved: overlaps would draw as holes under the even-odd fill rule
        union = shapely.union_all(shapely.make_valid(np.asarray(polygons, dtype=object)))
        return _round(shapely.multipolygons(
            [p for p in shapely.get_parts(union) if p.geom_type == "Polygon"]))
    if lines:
        return shapely.multilinestrings(lines)
    return shapely.GeometryCollection()


def district_bbox(district: District, *, margin_deg: float = 0.002) -> tuple[float, ...]:
    """Return the bounding box of the district's walking network, with a small margin."""
    west, south, east, north = shapely.total_bounds(district.edges.geometry.to_numpy())
    return (west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)


def district_basemap(district: District, *, tolerance: float = _TOLERANCE_DEG) -> Basemap:
    """Build the basemap of a district: its walking streets plus the bundled extract's areas.

    Water, green areas and buildings come from the bundled Taiyuan OSM layers clipped to the
    district's network; a district imported from elsewhere gets its streets only.
    """
    bbox = district_bbox(district)
    streets = streets_layer(district.edges, tolerance=tolerance)
    polygons = data.read_taiyuan_polygons()
    ext = shapely.total_bounds(polygons.geometry.to_numpy())
    if shapely.intersects(shapely.box(*ext), shapely.box(*bbox)):
        water, green, buildings = area_layers(
            polygons, data.read_taiyuan_lines(), (bbox[0], bbox[1], bbox[2], bbox[3]),
            tolerance=tolerance)
    else:
        water = green = buildings = _collection([], [])
    return Basemap(streets=streets, water=water, green=green, buildings=buildings)
