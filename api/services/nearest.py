"""Find the practice positions nearest to a point by walking, with the route to each."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from geo import DEFAULT_WALK_M_PER_MIN, District
from geo.categories import category
from geo.coverage import graph_with_sources, offered_categories
from geo.network import MAX_ACCESS_M, EdgePositions, WalkNetwork

_DECIMALS = 6


@dataclass
class _Prepared:
    """What every query on one district reuses: attached positions, oriented edge geometry."""

    district: District
    network: WalkNetwork
    sites: EdgePositions
    site_xy_m: np.ndarray
    edges_m: np.ndarray
    pair_edge: dict[tuple[int, int], int]
    to_wgs: Transformer


_PREPARED: dict[int, _Prepared] = {}
_MAX_PREPARED = 8


def _oriented_edges_m(network: WalkNetwork) -> np.ndarray:
    """Edge geometries in the metric CRS, each running from its ``u`` node to its ``v`` node."""
    geoms = network.edges.geometry.to_crs(network.crs_metric).to_numpy()
    nodes = network.nodes.geometry.to_crs(network.crs_metric).to_numpy()
    first = shapely.get_point(geoms, 0)
    flip = shapely.distance(first, nodes[network.v]) < shapely.distance(first, nodes[network.u])
    return np.asarray(np.where(flip, shapely.reverse(geoms), geoms))


def _prepare(district: District) -> _Prepared:
    cached = _PREPARED.get(id(district))
    if cached is not None and cached.district is district:
        return cached
    net = district.network
    geom = district.positions.geometry
    lon, lat = geom.x.to_numpy(), geom.y.to_numpy()
    pts = net.to_metric(lon, lat)
    pairs = pd.DataFrame({"a": np.minimum(net.u, net.v), "b": np.maximum(net.u, net.v),
                          "w": net.length, "e": np.arange(len(net.u))})
    best = pairs.sort_values("w", kind="stable").drop_duplicates(["a", "b"])
    prepared = _Prepared(
        district=district,
        network=net,
        sites=net.attach(lon, lat),
        site_xy_m=shapely.get_coordinates(pts),
        edges_m=_oriented_edges_m(net),
        pair_edge={(int(a), int(b)): int(e) for a, b, e in
                   zip(best["a"], best["b"], best["e"], strict=True)},
        to_wgs=Transformer.from_crs(net.crs_metric, "EPSG:4326", always_xy=True),
    )
    if len(_PREPARED) >= _MAX_PREPARED:  # keep memory bounded: drop the oldest
        del _PREPARED[next(iter(_PREPARED))]
    _PREPARED[id(district)] = prepared
    return prepared


def _walk_from(net: WalkNetwork, origin: EdgePositions) -> tuple[np.ndarray, np.ndarray]:
    """Single-source Dijkstra from a point on an edge (a virtual node numbered ``n_nodes``)."""
    graph = graph_with_sources(net, origin)
    dist, pred = dijkstra(graph, directed=True, indices=net.n_nodes, return_predecessors=True)
    return dist, pred


def _piece(geom: shapely.LineString, start: float, end: float) -> np.ndarray:
    """Coordinates of an edge from one fraction of its length to another (either way)."""
    part = substring(geom, min(max(start, 0.0), 1.0), min(max(end, 0.0), 1.0), normalized=True)
    return shapely.get_coordinates(part)


def _route_xy(
    p: _Prepared, origin: EdgePositions, origin_xy: np.ndarray, pred: np.ndarray, site: int,
    via: int | None,
) -> np.ndarray:
    """Metric coordinates of the walk: access leg, streets, access leg to the door."""
    net = p.network
    e_o, e_s = int(origin.edge[0]), int(p.sites.edge[site])
    f_o = float(origin.offset_m[0] / net.length[e_o])
    f_s = float(p.sites.offset_m[site] / net.length[e_s])
    parts = [origin_xy[None, :]]
    if via is None:  # straight along the shared edge
        parts.append(_piece(p.edges_m[e_o], f_o, f_s))
    else:
        path = [via]
        while pred[path[-1]] != net.n_nodes:
            path.append(int(pred[path[-1]]))
        path.reverse()
        first = path[0]
        parts.append(_piece(p.edges_m[e_o], f_o, 0.0 if first == net.u[e_o] else 1.0))
        for a, b in itertools.pairwise(path):
            e = p.pair_edge[(min(a, b), max(a, b))]
            xy = shapely.get_coordinates(p.edges_m[e])
            parts.append(xy if a == net.u[e] else xy[::-1])
        parts.append(_piece(p.edges_m[e_s], 0.0 if via == net.u[e_s] else 1.0, f_s))
    parts.append(p.site_xy_m[site][None, :])
    xy = np.concatenate(parts)
    keep = np.r_[True, np.any(np.abs(np.diff(xy, axis=0)) > 1e-6, axis=1)]
    return xy[keep]


def nearest_positions(
    district: District,
    lon: float,
    lat: float,
    *,
    limit: int = 3,
    category_code: str | None = None,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    max_access_m: float = MAX_ACCESS_M,
) -> dict[str, Any]:
    """Return the positions nearest to a point by walking, each with its route, as GeoJSON.

    The walk starts with the leg from the point to the nearest street and ends with the leg from
    the street to the position, as in :func:`geo.coverage.coverage`.

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
    dist, pred = _walk_from(net, origin)
    s = p.sites
    via_u = dist[net.u[s.edge]] + s.offset_m
    via_v = dist[net.v[s.edge]] + net.length[s.edge] - s.offset_m
    use_u = via_u <= via_v
    walk = np.where(use_u, via_u, via_v)
    via: list[int | None] = list(np.where(use_u, net.u[s.edge], net.v[s.edge]).tolist())
    along = (np.abs(s.offset_m - origin.offset_m[0]) + origin.access_m[0])
    same = (s.edge == origin.edge[0]) & (along < walk)
    walk = np.where(same, along, walk) + s.access_m
    for j in np.flatnonzero(same).tolist():
        via[j] = None
    order = [int(i) for i in np.argsort(walk, kind="stable")
             if eligible[i] and np.isfinite(walk[i])][:limit]

    origin_xy = shapely.get_coordinates(net.to_metric(np.array([lon]), np.array([lat])))[0]
    features = []
    for rank, i in enumerate(order, start=1):
        xy = _route_xy(p, origin, origin_xy, pred, i, via[i])
        x, y = p.to_wgs.transform(xy[:, 0], xy[:, 1])
        coords = np.round(np.column_stack([x, y]), _DECIMALS).tolist()
        row = pos.iloc[i]
        minutes = float(walk[i]) / walk_m_per_min
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {
                "rank": rank,
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
