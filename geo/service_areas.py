"""Draw each position's walking service area from the street stretches it reaches in time."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from geo.coverage import DEFAULT_WALK_M_PER_MIN
from geo.network import WalkNetwork
from geo.walk import searches

#: Half the width of the strip drawn along each reached street stretch, in metres: a street and
#: the building fronts on either side (a Chinese urban road is typically 15-40 m between
#: building lines; 25 m each side of the centre line covers the front row of buildings).
DEFAULT_STREET_WIDTH_M = 25.0
_COLUMNS = ["site_id", "name", "level", "minutes", "walk_m_per_min", "reach_m", "area_km2",
            "geometry"]


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def reached_lines(
    network: WalkNetwork,
    dist: np.ndarray,
    *,
    edge: int,
    offset_m: float,
    access_m: float,
    limit_m: float,
    door: shapely.Point | None = None,
) -> list[shapely.LineString]:
    """Return the street stretches (metric LineStrings) reachable from one source within a limit.

    Parameters
    ----------
    network
        The walking network.
    dist
        Walking metres from the source to every node (``inf`` beyond the limit).
    edge, offset_m, access_m
        Where the source joins the network (see :class:`geo.network.EdgePositions`).
    limit_m
        The walking limit.
    door
        The source itself (metric point); when given, the walk from it onto the street is
        included.

    Notes
    -----
    An edge ``u-v`` of length ``L`` is reached up to ``limit - dist[u]`` from ``u`` and
    ``limit - dist[v]`` from ``v``; when the two stretches meet, the whole edge is kept, otherwise
    each is cut from the edge's metric geometry at the exact distance. The source's own edge is
    also reached straight along it, ``limit - access_m`` either side of the source.
    """
    geoms = network.edges_metric
    length = network.length
    r_u = limit_m - dist[network.u]
    r_v = limit_m - dist[network.v]
    r_u = np.where(np.isfinite(r_u), r_u, -1.0)
    r_v = np.where(np.isfinite(r_v), r_v, -1.0)
    touched = (r_u > 0) | (r_v > 0)
    full = touched & ((r_u >= length) | (r_v >= length) | (r_u + r_v >= length))
    full_other = full.copy()
    full_other[edge] = False
    lines: list[shapely.LineString] = list(geoms[full_other])
    intervals: dict[int, list[tuple[float, float]]] = {}
    for e in np.flatnonzero(touched & ~full).tolist():
        spans = []
        if r_u[e] > 0:
            spans.append((0.0, float(r_u[e])))
        if r_v[e] > 0:
            spans.append((float(length[e] - r_v[e]), float(length[e])))
        intervals[e] = spans
    own_len = float(length[edge])
    own = intervals.setdefault(edge, [])
    if full[edge]:
        own.append((0.0, own_len))
    along = limit_m - access_m
    if along > 0:
        own.append((max(offset_m - along, 0.0), min(offset_m + along, own_len)))
        if door is not None and access_m > 0:
            on_street = shapely.line_interpolate_point(geoms[edge], offset_m / own_len,
                                                       normalized=True)
            lines.append(shapely.LineString([door, on_street]))
    for e, spans in intervals.items():
        L = float(length[e])
        for a, b in _merge(spans):
            if b - a <= 0:
                continue
            if a <= 0 and b >= L:
                lines.append(geoms[e])
            else:
                lines.append(substring(geoms[e], a / L, b / L, normalized=True))
    return lines


def service_areas(
    network: WalkNetwork,
    positions: gpd.GeoDataFrame,
    *,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    street_width_m: float = DEFAULT_STREET_WIDTH_M,
) -> gpd.GeoDataFrame:
    """Draw each position's walking service area from the streets it reaches in time.

    For every position, a Dijkstra cut off at the walking limit runs from the position's virtual
    source node (its access walk included; :func:`geo.walk.searches`). Edges reached entirely
    are kept, edges reached in part are cut at the exact reach from each end, the position's
    own edge is kept as far as one can walk along it, and the walk from the door onto the
    street is added. The stretches are buffered by ``street_width_m`` and merged: this follows
    the streets, it is not a hull.

    Parameters
    ----------
    network
        The walking network (e.g. from :func:`geo.profiles.network_for_profile`).
    positions
        Practice positions (WGS84 points) with ``site_id`` and optionally ``name`` and
        ``level``.
    minutes, walk_m_per_min
        The time limit and the pace.
    street_width_m
        Buffer around each reached stretch (see :data:`DEFAULT_STREET_WIDTH_M`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per position: ``site_id``, ``name``, ``level``, ``minutes``,
        ``walk_m_per_min``, ``reach_m``, ``area_km2`` and the WGS84 (multi)polygon (empty when
        the position is farther than the limit from any street).
    """
    if minutes <= 0 or walk_m_per_min <= 0 or street_width_m < 0:
        msg = "minutes and walk_m_per_min must be positive and street_width_m not negative"
        raise ValueError(msg)
    limit = minutes * walk_m_per_min
    geom = positions.geometry
    lon, lat = geom.x.to_numpy(), geom.y.to_numpy()
    sources = network.attach(lon, lat)
    doors = network.to_metric(lon, lat)
    polys = np.empty(len(sources), dtype=object)
    for batch, dist in searches(network, sources, limit_m=limit):
        for row, i in enumerate(batch.tolist()):
            pieces = reached_lines(
                network, dist[row], edge=int(sources.edge[i]),
                offset_m=float(sources.offset_m[i]), access_m=float(sources.access_m[i]),
                limit_m=limit, door=doors[i],
            )
            lines = np.array([ln for ln in pieces if ln.length > 0], dtype=object)
            # Buffering each stretch, then merging, is about twice as fast as buffering one
            # MultiLineString.
            polys[i] = (
                shapely.union_all(shapely.buffer(lines, street_width_m, quad_segs=4))
                if len(lines) else shapely.Polygon()
            )
    metric = gpd.GeoSeries(polys, crs=network.crs_metric)
    cols = {
        "site_id": positions["site_id"].to_numpy(),
        "name": positions["name"].to_numpy() if "name" in positions else None,
        "level": positions["level"].to_numpy() if "level" in positions else None,
        "minutes": float(minutes),
        "walk_m_per_min": float(walk_m_per_min),
        "reach_m": float(limit),
        "area_km2": metric.area.to_numpy() / 1e6,
    }
    return gpd.GeoDataFrame(cols, geometry=metric.to_crs("EPSG:4326").to_numpy(), crs="EPSG:4326")[
        _COLUMNS
    ]


def covered_area(areas: gpd.GeoDataFrame, *, by_level: bool = False) -> gpd.GeoDataFrame:
    """Merge service areas into the area covered by all positions (or by each level).

    Parameters
    ----------
    areas
        Output of :func:`service_areas`.
    by_level
        One row per ``level`` instead of one for all.

    Returns
    -------
    geopandas.GeoDataFrame
        ``level`` (``"all"`` unless ``by_level``), ``positions``, ``area_km2`` and the WGS84
        geometry.
    """
    groups = areas.groupby("level", sort=False) if by_level else [("all", areas)]
    rows, geoms = [], []
    for level, part in groups:
        geoms.append(shapely.union_all(part.geometry.to_numpy()))
        rows.append({"level": level, "positions": len(part)})
    out = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs="EPSG:4326")
    utm = out.estimate_utm_crs() if len(out) and not out.geometry.is_empty.all() else "EPSG:3857"
    out["area_km2"] = out.geometry.to_crs(utm).area / 1e6
    return out[["level", "positions", "area_km2", "geometry"]]
