"""Find coverage gaps: contiguous uncovered grid cells, ranked by residents."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from geo.categories import category as _category

#: Cells closer than this (degrees, about 1 cm) are neighbours: H3 hexagons share their edges.
_TOUCH_DEG = 1e-7
_COLUMNS = [
    "gap_id", "rank", "category", "cells", "residents", "area_km2", "worst_minutes",
    "mean_minutes", "unreachable_cells", "nearest_site_id", "nearest_site_name",
    "nearest_walk_minutes", "geometry",
]


def _components(geoms: np.ndarray) -> np.ndarray:
    """Label contiguous groups of polygons (sharing an edge or a point)."""
    n = len(geoms)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=_TOUCH_DEG)
    graph = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return np.asarray(connected_components(graph, directed=False)[1])


def gaps(
    coverage_cells: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    demand: pd.DataFrame | pd.Series,
    *,
    positions: pd.DataFrame | None = None,
    category: str | None = None,
    min_residents: float = 0.0,
) -> gpd.GeoDataFrame:
    """Dissolve uncovered grid cells into contiguous gap areas, largest number of residents first.

    Parameters
    ----------
    coverage_cells
        Per-cell coverage indexed by ``cell_id`` with ``covered``, ``walk_minutes`` and
        ``nearest_site``: :attr:`geo.coverage.Coverage.cells`, or one category's from
        :func:`geo.coverage.category_coverages`.
    cells
        Grid cells (WGS84) with ``cell_id`` and hexagon geometry.
    demand
        Residents per cell indexed by ``cell_id`` (``population`` column or a Series), e.g. from
        :func:`geo.demand.cell_demand`; missing cells count as empty.
    positions
        Practice positions with ``site_id`` and ``name``, to name the nearest one.
    category
        The service category the coverage describes (only labels the result, checked).
    min_residents
        Leave out gaps with fewer residents than this.

    Returns
    -------
    geopandas.GeoDataFrame
        One WGS84 (multi)polygon per gap: ``gap_id``, ``rank``, ``category``, ``cells``,
        ``residents``, ``area_km2``, ``worst_minutes`` and ``mean_minutes`` (resident-weighted,
        plain mean for an empty gap; both over cells that reach some position),
        ``unreachable_cells`` (cells that reach none), and the nearest existing position: the one
        closest to the gap's best-placed cell (``nearest_site_id``, ``nearest_site_name``,
        ``nearest_walk_minutes``). Unreachable values are ``NaN`` so the frame writes as GeoJSON.

    Raises
    ------
    UnknownCategoryError
        If ``category`` is not a known code.
    """
    code = _category(category).code if category is not None else None
    cov = coverage_cells.reindex(cells["cell_id"].to_numpy())
    uncovered = ~cov["covered"].eq(True).to_numpy(dtype=bool)
    pop_all = demand["population"] if isinstance(demand, pd.DataFrame) else demand
    pop = pop_all.reindex(cells["cell_id"].to_numpy()).fillna(0.0).to_numpy(dtype=float)
    idx = np.flatnonzero(uncovered)
    if len(idx) == 0:
        return gpd.GeoDataFrame(columns=_COLUMNS, geometry="geometry", crs="EPSG:4326")

    geoms = np.asarray(cells.geometry.to_numpy())[idx]
    label = _components(geoms)
    minutes = cov["walk_minutes"].to_numpy(dtype=float)[idx]
    nearest = cov["nearest_site"].to_numpy(dtype=object)[idx]
    p = pop[idx]
    reach = np.isfinite(minutes)
    frame = pd.DataFrame({
        "label": label,
        "residents": p,
        "m": np.where(reach, minutes, np.nan),
        "pm": np.where(reach, minutes, 0.0) * p,
        "preach": np.where(reach, p, 0.0),
        "unreachable": ~reach,
        "cells": 1,
    })
    g = frame.groupby("label")
    out = pd.DataFrame({
        "cells": g["cells"].sum(),
        "residents": g["residents"].sum(),
        "worst_minutes": g["m"].max(),
        "plain_mean": g["m"].mean(),
        "pm": g["pm"].sum(),
        "preach": g["preach"].sum(),
        "unreachable_cells": g["unreachable"].sum().astype(int),
    })
    out["mean_minutes"] = np.where(
        out["preach"] > 0, out["pm"] / out["preach"].where(out["preach"] > 0, 1.0),
        out["plain_mean"],
    )
    best = frame.assign(site=nearest).dropna(subset=["m"]).sort_values("m", kind="stable")
    best = best.groupby("label").first()
    out["nearest_site_id"] = best["site"].reindex(out.index)
    out["nearest_walk_minutes"] = best["m"].reindex(out.index)
    names: pd.Series = pd.Series(dtype=object)
    if positions is not None and len(positions):
        names = positions.set_index("site_id")["name"]
    out["nearest_site_name"] = out["nearest_site_id"].map(names)
    parts = pd.Series(list(geoms)).groupby(label)
    out["geometry"] = [shapely.union_all(parts.get_group(k).to_numpy()) for k in out.index]
    out = out[out["residents"] >= min_residents]
    out = out.sort_values(["residents", "cells"], ascending=[False, False], kind="stable")

    result = gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs="EPSG:4326")
    if len(result):
        result["area_km2"] = result.geometry.to_crs(result.estimate_utm_crs()).area / 1e6
    else:
        result["area_km2"] = pd.Series(dtype=float)
    result["rank"] = np.arange(1, len(result) + 1)
    prefix = f"{code}-" if code else ""
    result["gap_id"] = [f"{prefix}G{r:03d}" for r in result["rank"]]
    result["category"] = code
    return result[_COLUMNS]
