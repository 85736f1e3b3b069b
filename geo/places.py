"""Classify real OSM places (offices, compounds, parks, schools…) that can host practice work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

#: Place kinds, their zh-CN label and the OSM tags that make them.
PLACE_KINDS: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "government": ("政府机关", {"office": ("government", "administrative")}),
    "residential": ("居住小区", {"landuse": ("residential",)}),
    "community_centre": ("社区活动中心", {"amenity": ("community_centre", "social_centre")}),
    "library": ("图书馆", {"amenity": ("library",)}),
    "school": ("学校", {"amenity": ("school", "kindergarten", "college", "university")}),
    "museum": ("博物馆", {"tourism": ("museum",), "amenity": ("arts_centre",)}),
    "square": ("广场", {"place": ("square",)}),
    "park": ("公园", {"leisure": ("park", "garden", "playground")}),
    "sports": ("体育场馆", {"leisure": ("sports_centre", "stadium")}),
    "hospital": ("医疗机构", {"amenity": ("hospital", "clinic")}),
    "office": (
        "办公场所",
        {"office": ("yes", "company", "quango", "research", "ngo", "association", "insurance")},
    ),
}
#: Tags to ask osmnx for when reading places from OSM XML.
PLACE_TAGS: dict[str, bool | str | list[str]] = {}
for _label, _tags in PLACE_KINDS.values():
    for _key, _values in _tags.items():
        _old = PLACE_TAGS.get(_key, [])
        PLACE_TAGS[_key] = [*(_old if isinstance(_old, list) else []), *_values]


def place_kind(tags: Mapping[str, Any]) -> str | None:
    """Return the place kind of an OSM feature's tags, or ``None``."""
    for kind, (_label, rules) in PLACE_KINDS.items():
        for key, values in rules.items():
            value = tags.get(key)
            if isinstance(value, str) and value in values:
                return kind
    return None


def places_from_features(features: gpd.GeoDataFrame, *, id_column: str) -> gpd.GeoDataFrame:
    """Keep the features that are places, with ``osm_id``, ``name``, ``kind`` and geometry.

    Parameters
    ----------
    features
        OSM features with tag columns (GDAL ``multipolygons`` layer or osmnx features).
    id_column
        Column holding the feature's OSM id as text (e.g. ``"way/123"``).
    """
    cols = [c for c in {k for _, r in PLACE_KINDS.values() for k in r} if c in features]
    kinds = features[cols].apply(lambda row: place_kind(row.to_dict()), axis=1)
    names = features["name"] if "name" in features else pd.Series("", index=features.index)
    out = gpd.GeoDataFrame(
        {
            "osm_id": features[id_column].astype(str),
            "name": names.fillna("").astype(str).str.strip(),
            "kind": kinds,
        },
        geometry=features.geometry,
        crs=features.crs,
    )
    out = out[out["kind"].notna()].to_crs("EPSG:4326")
    return out.drop_duplicates("osm_id").reset_index(drop=True)


def gdal_osm_ids(polygons: gpd.GeoDataFrame) -> pd.Series:
    """OSM ids of a GDAL ``multipolygons`` layer as ``way/N`` or ``relation/N``."""
    way = polygons["osm_way_id"].fillna("").astype(str)
    rel = polygons["osm_id"].fillna("").astype(str)
    return ("way/" + way).where(way != "", "relation/" + rel)
