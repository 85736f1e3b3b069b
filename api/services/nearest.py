"""Find the practice positions nearest to a point by walking, with the route to each."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from api.services.analysis import analysis_of
from geo import DEFAULT_WALK_M_PER_MIN, District
from geo.categories import category
from geo.coverage import attach_positions, offered_categories
from geo.network import MAX_ACCESS_M, EdgePositions, WalkNetwork
from geo.walk import enter, node_walk, routes

_DECIMALS = 6


@dataclass(frozen=True)
class _Prepared:
    """What every query on one registry version reuses: the attached positions and their doors."""

    network: WalkNetwork
    sites: EdgePositions
    site_xy_m: np.ndarray
    to_wgs: Transformer


def _prepare(district: District) -> _Prepared:
    """Return the prepared positions of the district's registry version, made once."""

    def make() -> _Prepared:
        net = district.network
        geom = district.positions.geometry
        lon, lat = geom.x.to_numpy(), geom.y.to_numpy()
        return _Prepared(
            network=net,
            sites=attach_positions(net, district.positions),
            site_xy_m=shapely.get_coordinates(net.to_metric(lon, lat)),
            to_wgs=Transformer.from_crs(net.crs_metric, "EPSG:4326", always_xy=True),
        )

    return analysis_of(district).once("nearest", make)


def nearest_positions(
    district: District,
    lon: float,
    lat: float,
    *,
    limit: int = 3,
    category_code: str | None = None,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    max_access_m: float = MAX_ACCESS_M,
    site_id: str | None = None,
) -> dict[str, Any]:
    """Return the positions nearest to a point by walking, each with its route, as GeoJSON.

    The walk starts with the leg from the point to its nearest street and ends with the leg from
    the street to the position; in between it follows the package's one walking rule
    (:func:`geo.walk.enter`), and the route drawn is the walk measured (:func:`geo.walk.routes`).

    Parameters
    ----------
    district
        The district.
    lon, lat
        WGS84 coordinates of the starting point.
    limit
        How many positions to return.
    category_code
        Only positions offering this service category.
    walk_m_per_min
        Walking pace.
    max_access_m
        Refuse points farther than this from any street.
    site_id
        Only this position (``limit`` then does not matter): its feature is the one the
        unfiltered answer holds for it, ``rank`` included, but only its route is drawn. No
        feature if it is not reachable on foot (or does not offer ``category_code``).

    Raises
    ------
    OutOfAreaError
        If the point is farther than ``max_access_m`` from the walking network.
    UnknownCategoryError
        If ``category_code`` is not a known category.
    """
    p = _prepare(district)
    net = p.network
    pos = district.positions
    eligible = np.ones(len(pos), dtype=bool)
    if category_code:
        category(category_code)
        offered = offered_categories(pos, district.teams, categories=[category_code])
        eligible = offered[category_code].to_numpy(dtype=bool)
    origin = net.attach(np.array([lon]), np.array([lat]), max_access_m=max_access_m)
    # The walk from the point to every position: the point is the one source, the positions the
    # targets, entered by the package's one rule (either end of their edge, or along it).
    nodes = node_walk(net, origin)
    entry = enter(net, nodes, p.sites, origin)
    walk = entry.walk_m
    ranked = [int(i) for i in np.argsort(walk, kind="stable")
              if eligible[i] and np.isfinite(walk[i])]
    rank = {i: r for r, i in enumerate(ranked, start=1)}
    if site_id is None:
        order = ranked[:limit]
    else:  # one route drawn, not all of them (tracing each walk back is the costly part)
        ids = pos["site_id"].astype(str).to_numpy()
        order = [i for i in ranked if ids[i] == site_id][:1]

    origin_xy = shapely.get_coordinates(net.to_metric(np.array([lon]), np.array([lat])))
    lines = routes(net, nodes, origin, p.sites, entry, order, source_xy=origin_xy,
                   target_xy=p.site_xy_m)
    features = []
    for i, xy in zip(order, lines, strict=True):
        x, y = p.to_wgs.transform(xy[:, 0], xy[:, 1])
        coords = np.round(np.column_stack([x, y]), _DECIMALS).tolist()
        row = pos.iloc[i]
        minutes = float(walk[i]) / walk_m_per_min
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {
                "rank": rank[i],
                "site_id": str(row["site_id"]),
                "name": str(row["name"]),
                "level": str(row["level"]),
                "level_zh": str(row["level_zh"]),
                "walk_m": round(float(walk[i]), 1),
                "walk_minutes": round(minutes, 1),
                "minutes": max(1, math.ceil(round(minutes, 1))),
                "lon": round(float(row.geometry.x), _DECIMALS),
                "lat": round(float(row.geometry.y), _DECIMALS),
            },
        })
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "district": district.name,
            "origin": {"lon": round(lon, _DECIMALS), "lat": round(lat, _DECIMALS)},
            "origin_access_m": round(float(origin.access_m[0]), 1),
            "walk_m_per_min": round(walk_m_per_min, 3),
            "category": category_code,
            "count": len(features),
            "demo": bool(district.meta.get("demo_registry", True)),
            "note": "步行时间含从所选位置走到最近道路、从道路走到阵地的两段；示例数据",
            "attribution": district.meta["attribution"],
        },
    }
