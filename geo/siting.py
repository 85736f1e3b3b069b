"""Recommend where to add practice sites so the most residents newly get within a walk."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pulp
from scipy import sparse

from geo._errors import SitingError
from geo.categories import category as _category
from geo.coverage import (
    DEFAULT_WALK_M_PER_MIN,
    MEDIAN_SHARE,
    Coverage,
    attach_cells,
    cell_points_of,
    cells_within,
    coverage,
    offered_categories,
)
from geo.grid import CellPoints
from geo.network import DEFAULT_SNAP_M, WalkNetwork
from geo.places import PLACE_KINDS
from geo.walk import DEFAULT_BATCH, reach

if TYPE_CHECKING:
    from geo.district import District

Method = Literal["auto", "exact", "greedy"]
#: ``method="auto"`` solves exactly while the reduced problem has fewer nonzeros than this.
MAX_EXACT_NNZ = 2_000_000
#: Seconds CBC may spend before ``auto``/``exact`` settle for its best solution so far.
DEFAULT_TIME_LIMIT_S = 20.0


# ------------------------------------------------------------------------------ candidates


def siting_candidates(district: District) -> gpd.GeoDataFrame:
    """List the real OSM places inside the district that are not yet practice positions.

    Each place stands at its representative point (computed in the network's metric CRS, as the
    registry places positions), so a recommendation can be checked by adding that point. Places
    whose point lies outside the district outline (in the network's margin, another district's
    ground) are left out: a district can only open sites on its own ground.

    Returns
    -------
    geopandas.GeoDataFrame
        ``osm_id``, ``name`` (OSM name, may be empty), ``label`` (name or a kind description),
        ``kind``, ``lon``, ``lat``, ``inside`` (within the district outline: always true) and
        point geometry.
    """
    places = district.places
    taken = set(district.positions["osm_id"].astype(str))
    free = places[~places["osm_id"].astype(str).isin(taken)]
    crs = district.network.crs_metric
    pts = free.geometry.to_crs(crs).representative_point().to_crs("EPSG:4326")
    names = free["name"].fillna("").astype(str).to_numpy()
    kinds = free["kind"].astype(str).to_numpy()
    osm_ids = free["osm_id"].astype(str).to_numpy()
    labels = [
        n if n else f"{PLACE_KINDS[k][0] if k in PLACE_KINDS else k}（OSM {o}，无名称）"
        for n, k, o in zip(names, kinds, osm_ids, strict=True)
    ]
    out = gpd.GeoDataFrame(
        {
            "osm_id": osm_ids,
            "name": names,
            "label": labels,
            "kind": kinds,
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
            "inside": pts.within(district.outline).to_numpy(),
        },
        geometry=pts.to_numpy(),
        crs="EPSG:4326",
    )
    return out[out["inside"].to_numpy(dtype=bool)].reset_index(drop=True)


# ------------------------------------------------------------------------ coverage matrix


def _lonlat(values: np.ndarray | pd.DataFrame, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        msg = f"{what} must be an (n, 2) array of lon, lat; got shape {arr.shape}"
        raise ValueError(msg)
    return arr


def _points(cells: np.ndarray | pd.DataFrame | CellPoints) -> CellPoints:
    if isinstance(cells, CellPoints):
        return cells
    ll = _lonlat(cells, "cells_lonlat")
    return CellPoints.one_per_cell(ll[:, 0], ll[:, 1])


def candidate_reach(
    network: WalkNetwork,
    candidates_lonlat: np.ndarray | pd.DataFrame,
    points: CellPoints,
    *,
    limit_m: float,
    snap_m: float = DEFAULT_SNAP_M,
    batch_size: int = DEFAULT_BATCH,
) -> sparse.csr_matrix:
    """Tell which cell points lie within a walking limit of each candidate site.

    Each candidate joins the network as a source (:func:`geo.walk.graph_with_sources`); each
    point walks from the best of its streets (:meth:`geo.network.WalkNetwork.attach_near`) by
    the edge-entry rule, with cut-off searches a batch of candidates at a time
    (:func:`geo.walk.reach`): the same walks :func:`geo.coverage.coverage` measures.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, points x candidates.
    """
    if not limit_m > 0:
        msg = f"limit_m must be positive, got {limit_m}"
        raise ValueError(msg)
    cand = _lonlat(candidates_lonlat, "candidates_lonlat")
    n_pts, n_cand = len(points), len(cand)
    if n_pts == 0 or n_cand == 0:
        return sparse.csr_matrix((n_pts, n_cand), dtype=bool)
    sources = network.attach(cand[:, 0], cand[:, 1])
    at = attach_cells(network, points, snap_m=snap_m)
    pairs = reach(network, sources, at.at, limit_m=limit_m, batch_size=batch_size)
    m = sparse.csr_matrix(
        (np.ones(len(pairs), dtype=np.int8), (at.owner[pairs.target], pairs.source)),
        shape=(n_pts, n_cand),
    )
    m.sum_duplicates()
    out = m.astype(bool)
    out.eliminate_zeros()
    return out


def cell_cover(
    points: CellPoints, point_cover: sparse.spmatrix, covered_points: np.ndarray | None = None
) -> sparse.csr_matrix:
    """Turn points x candidates reach into the cells each candidate brings within the limit.

    A cell counts for a candidate when at least half of its residents' weight lies on points
    within the limit of that candidate or already of the existing positions
    (``covered_points``): the cell's median resident then is (:func:`geo.coverage.cells_within`).
    Cells the existing positions cover alone are in no column.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, cells x candidates.
    """
    n_cells = points.n_cells
    base = (np.zeros(len(points), bool) if covered_points is None
            else np.asarray(covered_points, dtype=bool))
    w = points.weight
    total = np.bincount(points.cell, weights=w, minlength=n_cells)
    have = np.bincount(points.cell, weights=np.where(base, w, 0.0), minlength=n_cells)
    done = cells_within(points, base)
    open_pts = ~base & ~done[points.cell]
    gather = sparse.csr_matrix(
        (w[open_pts], (points.cell[open_pts], np.flatnonzero(open_pts))),
        shape=(n_cells, len(points)),
    )
    weight = (gather @ sparse.csr_matrix(point_cover, dtype=float)).tocoo()
    ok = weight.data + have[weight.row] >= MEDIAN_SHARE * total[weight.row]
    out = sparse.csr_matrix((np.ones(int(ok.sum()), dtype=bool), (weight.row[ok], weight.col[ok])),
                            shape=(n_cells, point_cover.shape[1]))
    out.eliminate_zeros()
    return out


def candidate_coverage(
    network: WalkNetwork,
    candidates_lonlat: np.ndarray | pd.DataFrame,
    cells: np.ndarray | pd.DataFrame | CellPoints,
    *,
    limit_m: float,
    covered_points: np.ndarray | None = None,
    snap_m: float = DEFAULT_SNAP_M,
    batch_size: int = DEFAULT_BATCH,
) -> sparse.csr_matrix:
    """Tell which cells each candidate site brings within a walking limit.

    The cells' points are walked to as in :func:`geo.coverage.coverage`
    (:func:`candidate_reach`) and a cell counts when its median resident is within the limit
    (:func:`cell_cover`). No dense cells x candidates array is formed.

    Parameters
    ----------
    network
        The walking network.
    candidates_lonlat
        WGS84 ``(lon, lat)`` rows of candidate sites.
    cells
        Where the cells' residents are (:class:`geo.grid.CellPoints`), or WGS84 ``(lon, lat)``
        rows, one point per cell.
    limit_m
        Walking distance that counts as covered.
    covered_points
        Per point, whether the existing positions already reach it within the limit (see
        :func:`cell_cover`).
    snap_m
        How much farther than its nearest street a point may start (see :func:`coverage`).
    batch_size
        Candidates per Dijkstra call.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, cells x candidates, ``True`` where the candidate brings the cell within
        ``limit_m``.
    """
    points = _points(cells)
    reach_m = candidate_reach(network, candidates_lonlat, points, limit_m=limit_m, snap_m=snap_m,
                              batch_size=batch_size)
    return cell_cover(points, reach_m, covered_points)


# ---------------------------------------------------------------------- maximal coverage


@dataclass(frozen=True)
class CoverPicks:
    """Candidates chosen to cover the most demand, in the order each adds the most.

    ``picks`` index the candidate columns; ``gains`` is the demand each newly covers given the
    earlier picks; ``objective`` their sum. ``optimal`` is ``True`` only when the solver proved
    no other choice of at most ``k`` candidates covers more.
    """

    picks: np.ndarray
    gains: np.ndarray
    objective: float
    optimal: bool
    method: str
    seconds: float


@dataclass(frozen=True)
class CoverSolution:
    """The greedy and (when run) exact answers to one maximal covering problem.

    ``best`` is the one to report (exact when it ran, else greedy); ``gap`` is the share of the
    exact objective greedy misses, ``None`` unless both ran. ``reduced_shape`` and
    ``reduced_nnz`` size the problem that matters: cells with demand that some candidate
    reaches, and the candidates reaching them.
    """

    best: CoverPicks
    greedy: CoverPicks
    exact: CoverPicks | None
    reduced_shape: tuple[int, int]
    reduced_nnz: int

    @property
    def gap(self) -> float | None:
        """Share of the exact run's objective that greedy misses.

        The exact objective is a proven optimum only when ``exact.optimal``; after a time-out
        it is CBC's best (never below greedy, which warm-starts it).
        """
        if self.exact is None:
            return None
        if self.exact.objective <= 0:
            return 0.0
        return float((self.exact.objective - self.greedy.objective) / self.exact.objective)


def _check_problem(cover: sparse.spmatrix, weights: np.ndarray, k: int) -> sparse.csr_matrix:
    a = sparse.csr_matrix(cover, dtype=bool)
    a.eliminate_zeros()
    if weights.ndim != 1 or len(weights) != a.shape[0]:
        msg = f"{len(weights)} demand weights for {a.shape[0]} cells"
        raise ValueError(msg)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        msg = "demand weights must be finite and non-negative"
        raise ValueError(msg)
    if k < 1 or k > a.shape[1]:
        msg = (f"cannot add {k} sites: there are {a.shape[1]} candidate places "
               f"(ask for 1 to {a.shape[1]})")
        raise SitingError(msg)
    return a


def _order_picks(
    a: sparse.csr_matrix, w: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order a chosen set greedily with each pick's marginal gain (zero-gain picks dropped)."""
    order, gains = _greedy(a[:, chosen], w, len(chosen))
    return chosen[order], gains


def _greedy(a: sparse.csr_matrix, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximal coverage with exact marginal gains, updated only where a pick covers.

    Picking a candidate lowers the gain of exactly the candidates that share a newly covered
    cell, by that cell's weight; so instead of re-evaluating gains lazily from a heap, the rows
    each pick covers are subtracted in one vectorised step (same picks as lazy greedy, ties to
    the lowest index).
    """
    n_cand = a.shape[1]
    csc = a.tocsc()
    w = np.where(np.asarray(w, dtype=float) > 0, np.asarray(w, dtype=float), 0.0)
    gains = np.asarray(a.T @ w, dtype=float).ravel()
    covered = w <= 0
    picks: list[int] = []
    got: list[float] = []
    for _ in range(k):
        if n_cand == 0:
            break
        j = int(np.argmax(gains))
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        new = rows[~covered[rows]]
        gain = float(w[new].sum())
        if gain <= 0:
            break
        picks.append(j)
        got.append(gain)
        covered[new] = True
        touched = a[new]
        gains -= np.bincount(
            touched.indices, weights=np.repeat(w[new], np.diff(touched.indptr)), minlength=n_cand
        )
        gains[j] = -np.inf
    return np.asarray(picks, dtype=np.int64), np.asarray(got, dtype=float)


def greedy_max_coverage(cover: sparse.spmatrix, weights: np.ndarray, k: int) -> CoverPicks:
    """Pick up to ``k`` candidates one at a time, each covering the most still-uncovered demand.

    Parameters
    ----------
    cover
        Boolean cells x candidates coverage.
    weights
        Demand per cell; give already covered cells zero weight.
    k
        Number of candidates to add.
    """
    t0 = time.perf_counter()
    w = np.asarray(weights, dtype=float)
    a = _check_problem(cover, w, k)
    picks, gains = _greedy(a, w, k)
    return CoverPicks(picks, gains, float(gains.sum()), False, "greedy", time.perf_counter() - t0)


def _row_keys(m: sparse.csr_matrix) -> np.ndarray:
    """Label each row by its set of column indices (equal sets, equal labels)."""
    m.sort_indices()
    ind, ptr = m.indices.astype(np.int64), m.indptr
    keys = pd.Series([ind[ptr[i]:ptr[i + 1]].tobytes() for i in range(m.shape[0])])
    return np.asarray(pd.factorize(keys)[0])


def _undominated(m: sparse.csr_matrix, max_pairs: int) -> np.ndarray:
    """Columns whose cells no other column covers a superset of (one of each equal set kept).

    A dominated candidate never adds more than the one dominating it, so dropping it keeps the
    optimum. The column overlap matrix costs about the sum of squared row degrees; above
    ``max_pairs`` only equal columns are merged.
    """
    deg = np.diff(m.indptr).astype(np.int64)
    if int((deg * deg).sum()) > max_pairs:
        key = _row_keys(m.T.tocsr())
        return np.sort(np.unique(key, return_index=True)[1])
    m32 = m.astype(np.int32)
    overlap = (m32.T @ m32).tocoo()
    size = np.diff(m.tocsc().indptr)
    r, c = overlap.row, overlap.col
    inside = (r != c) & (overlap.data == size[r])  # column r within column c
    beaten = inside & ((size[r] < size[c]) | (r > c))  # equal sets: the lower index stays
    keep = np.ones(m.shape[1], bool)
    keep[r[beaten]] = False
    return np.flatnonzero(keep)


def _reduce(
    a: sparse.csr_matrix, w: np.ndarray, *, max_pairs: int = 50_000_000
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Shrink a maximal covering problem without changing its optimum.

    Keep the cells with demand that some candidate covers and the candidates covering any;
    drop candidates whose cells another candidate covers too (equal ones keep one); then merge
    cells covered by the same candidates into one cell of their summed demand.

    Returns
    -------
    matrix, weights, columns
        The reduced problem and, per reduced column, the original candidate index.
    """
    rows = np.flatnonzero((w > 0) & (np.diff(a.indptr) > 0))
    sub = a[rows]
    cols = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
    sub = sub[:, cols].tocsr()
    ww = w[rows]
    if sub.shape[0] == 0:
        return sub, ww, cols
    keep = _undominated(sub, max_pairs)
    sub, cols = sub[:, keep].tocsr(), cols[keep]
    row_key = _row_keys(sub)
    first_row = np.unique(row_key, return_index=True)[1]
    ww = np.bincount(row_key, weights=ww, minlength=len(first_row))
    return sub[first_row].tocsr(), ww, cols  # unique() orders by key, as bincount does


def _cbc_solve(
    a: sparse.csr_matrix,
    w: np.ndarray,
    k: int,
    *,
    start: np.ndarray | None,
    time_limit_s: float | None,
) -> tuple[np.ndarray, bool]:
    """Solve the MCLP on a (reduced) sparse matrix with PuLP + CBC; return chosen columns."""
    n_rows, n_cols = a.shape
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    y = [prob.add_variable(f"y{j}", 0, 1, cat=pulp.LpBinary) for j in range(n_cols)]
    # Cell variables may stay continuous: with integral sites, x_i = min(1, sum y_j) at optimum.
    x = [prob.add_variable(f"x{i}", 0, 1) for i in range(n_rows)]
    prob += pulp.LpAffineExpression(list(zip(x, w.tolist(), strict=True))), "covered_demand"
    ind, ptr = a.indices, a.indptr
    for i in range(n_rows):
        terms = [(y[j], 1.0) for j in ind[ptr[i]:ptr[i + 1]].tolist()]
        terms.append((x[i], -1.0))
        prob.addConstraint(
            pulp.LpConstraint(pulp.LpAffineExpression(terms), pulp.LpConstraintGE, rhs=0),
            f"c{i}",
        )
    prob.addConstraint(
        pulp.LpConstraint(pulp.LpAffineExpression([(v, 1.0) for v in y]), pulp.LpConstraintLE,
                          rhs=k),
        "sites",
    )
    warm = start is not None and len(start) > 0
    if warm and start is not None:
        chosen = np.zeros(n_cols, bool)
        chosen[start] = True
        hit = np.asarray(a @ chosen.astype(np.int8)).ravel() > 0
        for j, v in enumerate(y):
            v.setInitialValue(int(chosen[j]))
        for i, v in enumerate(x):
            v.setInitialValue(float(hit[i]))
    with warnings.catch_warnings():
        # PuLP 3.3 flags its bundled CBC for removal in 4.0; it is still what ships with it.
        warnings.filterwarnings("ignore", message="PULP_CBC_CMD is deprecated",
                                category=DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, warmStart=warm,
                                   gapRel=0.0, gapAbs=0.0)
        status = prob.solve(solver)
    if status != pulp.LpStatusOptimal:
        if warm and start is not None:  # out of time before CBC's first incumbent
            return np.asarray(start, dtype=np.int64), False
        msg = f"CBC could not solve the siting problem (status {pulp.LpStatus[status]})"
        raise SitingError(msg)
    picked = np.flatnonzero(np.array([(v.value() or 0.0) > 0.5 for v in y], dtype=bool))
    return picked, prob.sol_status == pulp.LpSolutionOptimal


def exact_max_coverage(
    cover: sparse.spmatrix,
    weights: np.ndarray,
    k: int,
    *,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    warm_start: np.ndarray | None = None,
) -> CoverPicks:
    """Solve the maximal covering location problem (MCLP) exactly with PuLP and CBC.

    The model is spopt's :class:`spopt.locate.MCLP` (maximise covered demand, at most ``k``
    sites) built straight from the sparse matrix after :func:`_reduce`, rather than from a
    dense cost matrix.

    Parameters
    ----------
    cover
        Boolean cells x candidates coverage.
    weights
        Demand per cell; give already covered cells zero weight.
    k
        Number of candidates to add.
    time_limit_s
        Let CBC stop here with its best solution (``optimal`` is then ``False``).
    warm_start
        Candidate indices to start CBC from (e.g. the greedy picks).
    """
    t0 = time.perf_counter()
    w = np.asarray(weights, dtype=float)
    a = _check_problem(cover, w, k)
    red, rw, cols = _reduce(a, w)
    if red.shape[1] <= k:
        chosen = cols
        optimal = True
    else:
        start = None
        if warm_start is not None and len(warm_start):
            start = np.flatnonzero(np.isin(cols, np.asarray(warm_start)))
        picked, optimal = _cbc_solve(red, rw, k, start=start, time_limit_s=time_limit_s)
        chosen = cols[picked]
    picks, gains = _order_picks(a, w, np.asarray(chosen, dtype=np.int64))
    return CoverPicks(picks, gains, float(gains.sum()), bool(optimal), "exact",
                      time.perf_counter() - t0)


def maximal_coverage(
    cover: sparse.spmatrix,
    weights: np.ndarray,
    k: int,
    *,
    method: Method = "auto",
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    max_exact_nnz: int = MAX_EXACT_NNZ,
) -> CoverSolution:
    """Choose up to ``k`` candidates that newly cover the most demand.

    Greedy always runs (it is cheap and warm-starts the exact solver); ``"exact"`` adds the
    MCLP solved by CBC, ``"auto"`` does so only while the reduced problem has fewer than
    ``max_exact_nnz`` nonzeros.

    Parameters
    ----------
    cover
        Boolean cells x candidates coverage (see :func:`candidate_coverage`).
    weights
        Demand per cell; give cells already covered zero weight.
    k
        Number of sites to add.
    method
        ``"auto"``, ``"exact"`` or ``"greedy"``.
    time_limit_s
        CBC time budget.
    max_exact_nnz
        Size limit for ``"auto"``.

    Raises
    ------
    SitingError
        If ``k`` is below 1 or above the number of candidates, or ``method`` is unknown.
    """
    if method not in ("auto", "exact", "greedy"):
        msg = f"unknown method {method!r}; use 'auto', 'exact' or 'greedy'"
        raise SitingError(msg)
    w = np.asarray(weights, dtype=float)
    a = _check_problem(cover, w, k)
    greedy = greedy_max_coverage(a, w, k)
    useful = a[(w > 0) & (np.diff(a.indptr) > 0)]
    nnz = int(useful.nnz)
    shape = (int(useful.shape[0]), int(np.count_nonzero(np.diff(useful.tocsc().indptr))))
    run_exact = method == "exact" or (method == "auto" and nnz < max_exact_nnz)
    exact = None
    if run_exact:
        exact = exact_max_coverage(a, w, k, time_limit_s=time_limit_s, warm_start=greedy.picks)
    best = exact if exact is not None and exact.objective >= greedy.objective else greedy
    return CoverSolution(best, greedy, exact, shape, nnz)


# ---------------------------------------------------------------------------- on a district


def _positions_offering(district: District, code: str | None) -> pd.DataFrame:
    """Positions offering a category (listed, or hosting an active team of it), else all."""
    positions = district.positions
    if code is None:
        return positions
    offers = offered_categories(positions, district.teams, categories=[code])[code]
    return positions[offers.to_numpy(dtype=bool)]


def _demand(district: District, demand_weights: np.ndarray | pd.Series) -> np.ndarray:
    w = np.asarray(demand_weights, dtype=float).ravel()
    if len(w) != len(district.cells):
        msg = f"{len(w)} demand weights for {len(district.cells)} cells of {district.name}"
        raise ValueError(msg)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        msg = "demand weights must be finite and non-negative"
        raise ValueError(msg)
    return w


def existing_coverage(
    district: District,
    *,
    category: str | None = None,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    cell_points: CellPoints | None = None,
) -> Coverage:
    """Compute coverage from the existing positions (only those offering ``category`` if given).

    A position offers a category when its ``categories`` list names it or it hosts an active
    team of it (:func:`geo.coverage.offered_categories`). ``cell_points`` says where each
    cell's residents are (default as in :func:`geo.coverage.coverage`).

    Raises
    ------
    UnknownCategoryError
        If ``category`` is not a valid code.
    """
    positions = _positions_offering(district, category)
    return coverage(
        district.network, positions, district.cells, minutes=minutes,
        walk_m_per_min=walk_m_per_min, inside=district.nodes["inside"].to_numpy(dtype=bool),
        cell_points=cell_points,
    )


def recommend_sites(
    district: District,
    k: int,
    demand_weights: np.ndarray | pd.Series,
    *,
    category: str | None = None,
    method: Method = "auto",
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    candidates: gpd.GeoDataFrame | None = None,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    max_exact_nnz: int = MAX_EXACT_NNZ,
    cell_points: CellPoints | None = None,
) -> pd.DataFrame:
    """Recommend up to ``k`` real places to turn into sites, most newly covered residents first.

    Cells the existing positions already reach count as covered; the picks maximise residents
    newly within the walking limit. Picks that would add nobody are left out, so fewer than
    ``k`` rows come back when fewer places help (``attrs["note"]`` says so).

    A cell is within the limit when its median resident is (:mod:`geo.coverage`), so two sites
    may together cover a cell that neither covers alone. The optimisers count a cell for a
    candidate when that candidate brings it within the limit together with the existing
    positions (:func:`cell_cover`); the gains reported per pick (``new_cells``,
    ``new_residents``, ``cumulative_f15``, ``final_f15``) are recomputed for the picks together,
    so they are what :func:`coverage_with_extra_sites` finds, and never below the objective.

    Parameters
    ----------
    district
        The district.
    k
        Number of sites to add.
    demand_weights
        Residents per cell, aligned with ``district.cells``.
    category
        Count only the existing positions offering this service category.
    method
        ``"exact"`` (MCLP with CBC), ``"greedy"``, or ``"auto"`` (exact while small enough).
    minutes, walk_m_per_min
        The walking limit.
    candidates
        Places to choose from (default :func:`siting_candidates`), with ``osm_id``, ``name``,
        ``label``, ``kind``, ``lon``, ``lat``.
    time_limit_s, max_exact_nnz
        See :func:`maximal_coverage`.
    cell_points
        Where each cell's residents are (default as in :func:`geo.coverage.coverage`).

    Returns
    -------
    pandas.DataFrame
        One row per pick in order: ``rank``, ``name``, ``label``, ``osm_id``, ``kind``, ``lon``,
        ``lat``, ``inside``, ``new_cells``, ``new_residents`` (marginal) and
        ``cumulative_f15`` (share of all residents within the limit after this pick).
        ``attrs`` holds ``method``, ``optimal``, ``requested``, ``residents``,
        ``baseline_f15``, ``final_f15``, ``greedy_objective``, ``exact_objective``, ``gap``,
        ``seconds``, ``limit_m``, ``category``, ``candidates``, ``reduced_cells``,
        ``reduced_candidates``, ``reduced_nnz`` and ``note``.

    Raises
    ------
    SitingError
        If ``k`` is below 1 or exceeds the number of candidate places.
    UnknownCategoryError
        If ``category`` is not a valid code.
    """
    t0 = time.perf_counter()
    if category is not None:
        _category(category)
    w = _demand(district, demand_weights)
    cands = siting_candidates(district) if candidates is None else candidates.reset_index(drop=True)
    if k < 1 or k > len(cands):
        msg = (f"cannot add {k} sites in {district.name}: there are {len(cands)} candidate "
               f"places (real places not yet positions); ask for 1 to {len(cands)}")
        raise SitingError(msg)
    points = cell_points_of(district.network, district.cells) if cell_points is None \
        else cell_points
    base = existing_coverage(district, category=category, minutes=minutes,
                             walk_m_per_min=walk_m_per_min, cell_points=points)
    covered = base.cells["covered"].to_numpy(dtype=bool)
    limit_m = base.limit_m
    reached = base.points["walk_m"].to_numpy() <= limit_m
    point_cover = candidate_reach(district.network, cands[["lon", "lat"]].to_numpy(dtype=float),
                                  points, limit_m=limit_m)
    cover = cell_cover(points, point_cover, reached)
    open_w = np.where(covered, 0.0, w)
    sol = maximal_coverage(cover, open_w, k, method=method, time_limit_s=time_limit_s,
                           max_exact_nnz=max_exact_nnz)
    best = sol.best
    total = float(w.sum())
    baseline = float(w[covered].sum())
    picks = best.picks
    # The picks together, in order: what each adds to the existing positions and those before.
    csc = point_cover.tocsc()
    now = covered.copy()
    new_cells, gains = [], []
    for j in picks:
        reached[csc.indices[csc.indptr[j]:csc.indptr[j + 1]]] = True
        after = cells_within(points, reached) | covered
        new_cells.append(int(np.count_nonzero(after & ~now)))
        gains.append(float(w[after & ~now].sum()))
        now = after
    gain = np.asarray(gains, dtype=float)
    share = (baseline + np.cumsum(gain)) / total if total > 0 else np.zeros(len(picks))
    chosen = cands.iloc[picks]
    out = pd.DataFrame(
        {
            "rank": np.arange(1, len(picks) + 1),
            "name": chosen["name"].to_numpy(),
            "label": chosen["label"].to_numpy() if "label" in chosen else chosen["name"].to_numpy(),
            "osm_id": chosen["osm_id"].astype(str).to_numpy(),
            "kind": chosen["kind"].to_numpy(),
            "lon": chosen["lon"].to_numpy(dtype=float),
            "lat": chosen["lat"].to_numpy(dtype=float),
            "inside": (chosen["inside"].to_numpy(dtype=bool) if "inside" in chosen
                       else np.ones(len(picks), bool)),
            "new_cells": np.asarray(new_cells, dtype=np.int64),
            "new_residents": gain,
            "cumulative_f15": share,
        }
    )
    note = ""
    if len(picks) < k:
        note = (f"only {len(picks)} of the {k} requested sites would bring anyone new within "
                f"{minutes:g} minutes; more sites would add nobody")
    out.attrs.update(
        method=best.method,
        optimal=best.optimal,
        requested=int(k),
        residents=total,
        baseline_f15=baseline / total if total > 0 else 0.0,
        final_f15=(baseline + float(gain.sum())) / total if total > 0 else 0.0,
        greedy_objective=sol.greedy.objective,
        exact_objective=None if sol.exact is None else sol.exact.objective,
        gap=sol.gap,
        seconds=time.perf_counter() - t0,
        limit_m=limit_m,
        category=category,
        candidates=len(cands),
        reduced_cells=sol.reduced_shape[0],
        reduced_candidates=sol.reduced_shape[1],
        reduced_nnz=sol.reduced_nnz,
        note=note,
    )
    return out


# ------------------------------------------------------------------------------ extra sites


def _as_extra_sites(extra: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame:
    if isinstance(extra, gpd.GeoSeries):
        extra = gpd.GeoDataFrame(geometry=extra)
    if extra.crs is None:
        extra = extra.set_crs("EPSG:4326")
    geom = extra.geometry
    if geom.isna().any() or geom.is_empty.any():
        msg = "extra sites include missing or empty geometries"
        raise SitingError(msg)
    kinds = set(geom.geom_type)
    if kinds - {"Point"}:
        msg = f"extra sites must be points; found {', '.join(sorted(kinds))}"
        raise SitingError(msg)
    extra = extra.to_crs("EPSG:4326")
    if "site_id" in extra:
        ids = extra["site_id"].astype(str).to_numpy()
    else:
        ids = np.array([f"extra-{i + 1}" for i in range(len(extra))], dtype=object)
    return gpd.GeoDataFrame({"site_id": ids}, geometry=extra.geometry.to_numpy(), crs="EPSG:4326")


def read_extra_sites(path: str | Path) -> gpd.GeoDataFrame:
    """Read proposed sites from a GeoJSON (or GeoPackage) file of points.

    Coordinates are WGS84 unless the file says otherwise; the file is checked as
    :func:`geo.demand.read_vector_file` does.

    Raises
    ------
    SitingError
        If the file is missing, unreadable or not of the format its name says, holds no
        features, coordinates that are not longitude/latitude, or non-point geometries.
    """
    from geo.demand import read_vector_file

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise SitingError(msg)
    if path.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        msg = f"{path}: unsupported file type {path.suffix!r} (use .geojson or .gpkg)"
        raise SitingError(msg)
    gdf = read_vector_file(path, what="extra sites", error=SitingError)
    if len(gdf) == 0:
        msg = f"{path}: no sites in the file"
        raise SitingError(msg)
    try:
        sites = _as_extra_sites(gdf)
    except SitingError as e:
        msg = f"{path}: {e}"
        raise SitingError(msg) from e
    keep = [c for c in ("name", "osm_id", "kind") if c in gdf]
    for col in keep:
        sites[col] = gdf[col].to_numpy()
    return sites


def coverage_with_extra_sites(
    district: District,
    extra_sites: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    category: str | None = None,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    cell_points: CellPoints | None = None,
) -> Coverage:
    """Compute coverage as if the extra sites existed alongside the existing positions.

    With ``category``, existing positions count only if they offer it; the extra sites are
    taken to offer it (they are proposed for it).

    Parameters
    ----------
    district
        The district.
    extra_sites
        Points (any CRS; WGS84 if unset), optionally with ``site_id``.
    category, minutes, walk_m_per_min, cell_points
        As in :func:`recommend_sites`.

    Raises
    ------
    SitingError
        If the extra sites are not all points.
    UnknownCategoryError
        If ``category`` is not a valid code.
    """
    positions = _positions_offering(district, category)
    extra = _as_extra_sites(extra_sites)
    both = gpd.GeoDataFrame(
        pd.concat([positions[["site_id", "geometry"]], extra], ignore_index=True),
        geometry="geometry",
        crs="EPSG:4326",
    )
    return coverage(
        district.network, both, district.cells, minutes=minutes, walk_m_per_min=walk_m_per_min,
        inside=district.nodes["inside"].to_numpy(dtype=bool), cell_points=cell_points,
    )


def covered_share(cov: Coverage, demand_weights: np.ndarray | pd.Series) -> float:
    """Share of demand (residents) whose cell lies within the coverage's walking limit."""
    w = np.asarray(demand_weights, dtype=float)
    total = float(w.sum())
    return float(w[cov.cells["covered"].to_numpy(dtype=bool)].sum() / total) if total > 0 else 0.0
