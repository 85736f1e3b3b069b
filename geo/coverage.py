"""Calculate walking minutes from every node, grid cell and position to the nearest position.

A cell's minutes stand for where its residents are: the cell is attached to the streets from
several points (its housing, :func:`geo.grid.resident_points`, or fixed samples over it,
:func:`geo.grid.cell_samples`), each point
walks from the best street within a short detour of it
(:meth:`geo.network.WalkNetwork.attach_near`), and the cell takes the walk of its median
resident: the shortest walk that at least half of its residents (by point weight) have. A cell
is thus within the limit when most of its residents are.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from geo.grid import CellPoints, cell_samples
from geo.network import DEFAULT_SNAP_M, EdgePositions, WalkNetwork
from geo.walk import NodeWalk, best_of, enter, graph_with_sources, node_walk

try:  # pandas >= 3 builds a frame from its columns as they are (see _frame)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - pandas 2
    _from_blocks = None

T = TypeVar("T")

#: GB 50180-2018 puts the 15-minute life circle at 800–1000 m of walking; the default reads
#: the upper bound as 1000 m in 15 minutes.
DEFAULT_WALK_M_PER_MIN = 1000.0 / 15.0
#: Slowest pace accepted (1.2 km/h): slower is no walk anyone plans for, and near zero it
#: makes every minute figure infinite.
MIN_WALK_M_PER_MIN = 20.0
#: Fastest pace accepted (12 km/h, a run).
MAX_WALK_M_PER_MIN = 200.0
#: A cell is within the limit when this share of its residents is (its median resident is); the
#: tolerance makes an exact half count the same however the weights were summed.
MEDIAN_SHARE = 0.5 * (1.0 - 1e-9)


# ------------------------------------------------------------------------ cells and their points


class _Memo:
    """Results kept while the objects they were computed from live (looked up by identity)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.kept: dict[tuple[Any, ...], tuple[list[weakref.ref[Any]], Any]] = {}
        self.lock = threading.Lock()

    def get(self, objs: tuple[Any, ...], extra: tuple[Any, ...], make: Callable[[], T]) -> T:
        key = (*map(id, objs), *extra)
        with self.lock:
            hit = self.kept.get(key)
        if hit is not None and all(r() is o for r, o in zip(hit[0], objs, strict=True)):
            return cast(T, hit[1])
        value = make()
        with self.lock:
            while len(self.kept) >= self.size:
                del self.kept[next(iter(self.kept))]
            self.kept[key] = ([weakref.ref(o) for o in objs], value)
        return value


_POINTS = _Memo()
_ATTACHED = _Memo()
_POSITIONS = _Memo()


class _Snapped:
    """A registry's positions on their streets, and the search graph they join.

    The graph (:func:`geo.walk.graph_with_sources`) is built on the first search and kept with
    the attachment, so a repeated coverage on one registry costs the search alone.
    """

    def __init__(self, at: EdgePositions) -> None:
        self.at = at
        self._graph: sparse.csr_matrix | None = None

    def graph(self, network: WalkNetwork) -> sparse.csr_matrix:
        if self._graph is None:  # two threads may both build it: the same graph either way
            g = graph_with_sources(network, self.at)
            for a in (g.data, g.indices, g.indptr):
                a.flags.writeable = False  # shared by every search on this registry
            self._graph = g
        return self._graph


def _snapped(network: WalkNetwork, positions: pd.DataFrame) -> _Snapped:
    pts = positions.geometry.to_numpy()
    xy = shapely.get_coordinates(pts)  # one pass over the points
    if len(xy) != len(pts):  # a missing or empty point has no coordinates: nan, as get_x reads
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]).astype(float)
    lon, lat = xy[:, 0], xy[:, 1]
    digest = hashlib.blake2b(xy.tobytes(), digest_size=16).digest()

    def make() -> _Snapped:
        at = network.attach(lon, lat)
        for a in (at.edge, at.offset_m, at.access_m):
            a.flags.writeable = False  # shared by every caller
        return _Snapped(at)

    return _POSITIONS.get((network,), (len(lon), digest), make)


def attach_positions(network: WalkNetwork, positions: pd.DataFrame) -> EdgePositions:
    """Attach practice positions to their streets (:meth:`geo.network.WalkNetwork.attach`).

    The attachment is kept per network and set of coordinates (a digest of them, far cheaper
    than snapping): the coverage of every limit, pace and category on one registry version, the
    walks of dispatch and the nearest positions snap its positions once, and a moved or added
    position is a new set. The coverage searches also keep the graph the positions join.
    """
    return _snapped(network, positions).at


_LABELS: dict[tuple[str, ...], pd.Index] = {}


def _block(a: np.ndarray) -> Any:
    """Return a column as a frame stores it: a (1, n) numpy block or an extension array."""
    if a.dtype != object:
        return a.reshape(1, -1)
    col = pd.Series(a, copy=False)  # pandas' own inference (site ids become strings)
    return col.array if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else (
        col.to_numpy().reshape(1, -1))


def _frame(columns: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """Return a frame of 1-D arrays made by the caller for it alone (they are not copied).

    A repeated coverage builds the same frames again and again, and ``pd.DataFrame(dict)``
    infers the column labels and every column's type each time and copies the columns into
    one block per type: a few tenths of a millisecond per frame on a busy machine, next to a
    search of a few milliseconds on the whole Taiyuan extract. pandas' block constructor, with
    the labels made once, takes the arrays as they are; object columns still go through
    pandas' inference, so the frame is the one ``pd.DataFrame`` makes.
    """
    if _from_blocks is None:  # pragma: no cover - pandas 2
        return pd.DataFrame(columns, index=index, copy=False)
    names = tuple(columns)
    labels = _LABELS.get(names)
    if labels is None:
        labels = _LABELS.setdefault(names, pd.Index(names))
    blocks = [(_block(a), np.array([i])) for i, a in enumerate(columns.values())]
    # A shallow copy of the labels: renaming one frame's columns leaves the others alone.
    return _from_blocks(blocks, index=index, columns=labels.copy(deep=False))


def cell_points_of(network: WalkNetwork, cells: pd.DataFrame) -> CellPoints:
    """Return the default points of cells: fixed samples over each polygon, else its lon/lat.

    Cells with polygon geometry (the district's H3 hexagons) get
    :func:`geo.grid.cell_samples`; a frame of points only (``lon``, ``lat``) gets one point
    per row. The samples are kept while ``cells`` lives (the frame must not be modified).
    """
    if isinstance(cells, gpd.GeoDataFrame) and len(cells) and cells.crs is not None and (
        shapely.get_dimensions(cells.geometry.to_numpy()) == 2
    ).all():
        crs = network.crs_metric
        return _POINTS.get((cells,), (crs.to_string(),), lambda: cell_samples(cells, crs=crs))
    return CellPoints.one_per_cell(cells["lon"].to_numpy(), cells["lat"].to_numpy())


@dataclass(frozen=True)
class AttachedPoints:
    """Cell points attached to the streets, each to every street within its snap distance."""

    points: CellPoints
    at: EdgePositions
    owner: np.ndarray


def attach_cells(
    network: WalkNetwork, points: CellPoints, *, snap_m: float = DEFAULT_SNAP_M
) -> AttachedPoints:
    """Attach cell points to the streets (see :meth:`geo.network.WalkNetwork.attach_near`).

    The attachment is kept while ``network`` and ``points`` live, so the coverage of many
    position sets (categories, proposed sites) attaches the same points once.
    """

    def make() -> AttachedPoints:
        at, owner = network.attach_near(points.lon, points.lat, snap_m=snap_m)
        return AttachedPoints(points, at, owner)

    return _ATTACHED.get((network, points), (float(snap_m),), make)


def median_point(cell: np.ndarray, walk_m: np.ndarray, weight: np.ndarray,
                 n_cells: int) -> np.ndarray:
    """Return, per cell, the point whose walk is the cell's weighted median.

    The median is the shortest walk that at least half of the cell's weight has (an exact half
    counts); unreachable points (``inf``) come last.
    """
    order = np.lexsort((walk_m, cell))
    c, w = cell[order], weight[order]
    cum = np.cumsum(w)
    start = np.r_[0, np.flatnonzero(c[1:] != c[:-1]) + 1]
    before = np.repeat(cum[start] - w[start], np.diff(np.r_[start, len(c)]))
    total = np.bincount(cell, weights=weight, minlength=n_cells)
    reached = np.flatnonzero(cum - before >= MEDIAN_SHARE * total[c])
    first = reached[np.r_[True, c[reached][1:] != c[reached][:-1]]]
    if len(first) != n_cells:
        msg = f"{n_cells} cells but {len(first)} of them have points"
        raise ValueError(msg)
    return np.asarray(order[first])


def cells_within(points: CellPoints, within: np.ndarray) -> np.ndarray:
    """Tell which cells have at least half their residents' weight on points within a limit.

    The same test as the cell's median walk being within it (:func:`median_point`).
    """
    w = points.weight
    total = np.bincount(points.cell, weights=w, minlength=points.n_cells)
    got = np.bincount(points.cell, weights=np.where(within, w, 0.0), minlength=points.n_cells)
    return np.asarray(got >= MEDIAN_SHARE * total)


@dataclass(frozen=True)
class CellWalk:
    """Walks of the cells (their median point) and of every point."""

    walk_m: np.ndarray
    source: np.ndarray
    access_m: np.ndarray
    point_walk_m: np.ndarray
    point_source: np.ndarray
    point_access_m: np.ndarray


def cell_walk(
    network: WalkNetwork, nodes: NodeWalk, sources: EdgePositions, cells: AttachedPoints
) -> CellWalk:
    """Walk from the nearest source to every cell point and take each cell's median.

    Each point walks by :func:`geo.walk.enter` from the best of its streets
    (:func:`geo.walk.best_of`); the cell reads the walk, nearest source and access walk of its
    median point (:func:`median_point`).
    """
    pts = cells.points
    entry = enter(network, nodes, cells.at, sources)
    point_m, att = best_of(entry.walk_m, cells.owner, len(pts))
    point_src = entry.source[att]
    point_access = cells.at.access_m[att]
    med = median_point(pts.cell, point_m, pts.weight, pts.n_cells)
    return CellWalk(point_m[med], point_src[med], point_access[med], point_m, point_src,
                    point_access)


def walk_minutes(
    network: WalkNetwork,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
) -> pd.DataFrame:
    """Return walking minutes from every node to the nearest of the given positions.

    The positions are attached to the nearest point of the nearest street, so the walk includes
    the leg from the street to the door.

    Parameters
    ----------
    network
        The walking network.
    lon, lat
        WGS84 coordinates of the practice positions.
    walk_m_per_min
        Walking pace in metres per minute.

    Returns
    -------
    pandas.DataFrame
        Indexed by node ``osmid`` with ``walk_m``, ``walk_minutes`` and ``nearest`` (the index of
        the nearest position, ``-1`` if unreachable).
    """
    at = network.attach(lon, lat)
    return _node_minutes(network, node_walk(network, at), walk_m_per_min)


def position_walk_minutes(
    network: WalkNetwork,
    positions: pd.DataFrame,
    *,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
) -> pd.DataFrame:
    """Return walking minutes from every node to the nearest of a registry's positions.

    As :func:`walk_minutes`, with the positions' snapping and the graph they join kept
    (:func:`attach_positions`): a repeated call on one registry costs the search only.

    Parameters
    ----------
    network
        The walking network.
    positions
        Practice positions (WGS84 points).
    walk_m_per_min
        Walking pace in metres per minute.
    """
    snapped = _snapped(network, positions)
    nodes = node_walk(network, snapped.at, graph=snapped.graph(network))
    return _node_minutes(network, nodes, walk_m_per_min)


def _node_minutes(network: WalkNetwork, nodes: NodeWalk, walk_m_per_min: float) -> pd.DataFrame:
    return _frame(
        {
            "walk_m": nodes.walk_m,
            "walk_minutes": nodes.walk_m / walk_m_per_min,
            "nearest": nodes.source,
        },
        network.node_index,
    )


@dataclass(frozen=True)
class Coverage:
    """Walking minutes from every node and grid cell to its nearest practice position.

    ``nodes`` is indexed by ``osmid`` and ``cells`` by ``cell_id``; both carry ``walk_m``,
    ``walk_minutes``, ``nearest_site`` (a ``site_id``) and ``covered`` (within the limit). A
    cell's figures are those of its median resident (see the module notes); ``cells`` also has
    ``access_m`` (that resident's walk onto the street), ``within_share`` (the share of the
    cell's residents within the limit) and ``points``. ``points`` has one row per cell point:
    ``cell_id``, ``lon``, ``lat``, ``weight``, ``walk_m``, ``nearest_site``, ``access_m``.
    """

    nodes: pd.DataFrame
    cells: pd.DataFrame
    minutes: float
    walk_m_per_min: float
    points: pd.DataFrame

    @property
    def limit_m(self) -> float:
        """The walking distance the time limit allows."""
        return self.minutes * self.walk_m_per_min

    def covered_node_share(self) -> float:
        """Share of the district's own nodes (margin excluded) within the limit."""
        inside = self.nodes[self.nodes["inside"]]
        return float(inside["covered"].mean()) if len(inside) else 0.0

    def covered_cell_share(self) -> float:
        """Share of grid cells whose median resident is within the limit."""
        return float(self.cells["covered"].mean()) if len(self.cells) else 0.0


def _coverage(
    network: WalkNetwork,
    sources: EdgePositions,
    site_ids: np.ndarray,
    cells: AttachedPoints,
    cell_index: pd.Index,
    *,
    minutes: float,
    walk_m_per_min: float,
    inside: np.ndarray,
    graph: sparse.csr_matrix | None = None,
) -> Coverage:
    """One search from the sources, read at the nodes and at the cells' points."""
    nodes = node_walk(network, sources, graph=graph)
    ids = np.append(np.asarray(site_ids, dtype=object), np.array([None], dtype=object))
    limit = minutes * walk_m_per_min
    node_df = _frame(
        {
            "walk_m": nodes.walk_m,
            "walk_minutes": nodes.walk_m / walk_m_per_min,
            "nearest_site": ids[nodes.source],
            "covered": nodes.walk_m <= limit,
            "inside": np.array(inside),  # the frame's own copy of the caller's flags
        },
        network.node_index,
    )
    walk = cell_walk(network, nodes, sources, cells)
    pts = cells.points
    total = np.bincount(pts.cell, weights=pts.weight, minlength=pts.n_cells)
    within = np.bincount(pts.cell, weights=np.where(walk.point_walk_m <= limit, pts.weight, 0.0),
                         minlength=pts.n_cells)
    cell_df = _frame(
        {
            "walk_m": walk.walk_m,
            "walk_minutes": walk.walk_m / walk_m_per_min,
            "nearest_site": ids[walk.source],
            "covered": walk.walk_m <= limit,
            "access_m": walk.access_m,
            "within_share": within / total,
            "points": np.bincount(pts.cell, minlength=pts.n_cells),
        },
        cell_index,
    )
    point_df = pd.DataFrame(
        {
            "cell_id": pd.Categorical.from_codes(pts.cell, categories=cell_index),
            "lon": pts.lon,
            "lat": pts.lat,
            "weight": pts.weight,
            "walk_m": walk.point_walk_m,
            "nearest_site": ids[walk.point_source],
            "access_m": walk.point_access_m,
        }
    )
    return Coverage(node_df, cell_df, minutes, walk_m_per_min, point_df)


def _check(minutes: float, walk_m_per_min: float) -> None:
    if minutes <= 0 or walk_m_per_min <= 0:
        msg = "minutes and walk_m_per_min must be positive"
        raise ValueError(msg)


def _points_for(network: WalkNetwork, cells: pd.DataFrame,
                cell_points: CellPoints | None) -> CellPoints:
    if cell_points is None:
        return cell_points_of(network, cells)
    if cell_points.n_cells != len(cells):
        msg = f"cell_points describe {cell_points.n_cells} cells, not the {len(cells)} given"
        raise ValueError(msg)
    return cell_points


def coverage(
    network: WalkNetwork,
    positions: pd.DataFrame,
    cells: pd.DataFrame,
    *,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    inside: np.ndarray | None = None,
    cell_points: CellPoints | None = None,
    snap_m: float = DEFAULT_SNAP_M,
) -> Coverage:
    """Compute walking coverage of nodes and grid cells from practice positions.

    Parameters
    ----------
    network
        The walking network.
    positions
        Practice positions (WGS84 points) with a ``site_id`` column.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat`` (cell centre), and their polygon
        geometry when a GeoDataFrame.
    minutes
        The time limit.
    walk_m_per_min
        Walking pace.
    inside
        Boolean per network node: inside the district outline (defaults to all).
    cell_points
        Where each cell's residents are (e.g. :func:`geo.grid.resident_points`); default
        :func:`cell_points_of` (fixed samples over each polygon, else the cell's lon/lat).
    snap_m
        A cell point walks from the best street at most this much farther than its nearest
        (:meth:`geo.network.WalkNetwork.attach_near`; 0: the nearest only).
    """
    _check(minutes, walk_m_per_min)
    snapped = _snapped(network, positions)
    attached = attach_cells(network, _points_for(network, cells, cell_points), snap_m=snap_m)
    return _coverage(
        network, snapped.at, positions["site_id"].to_numpy(dtype=object), attached,
        pd.Index(cells["cell_id"].to_numpy(), name="cell_id"), minutes=minutes,
        walk_m_per_min=walk_m_per_min,
        inside=np.ones(network.n_nodes, bool) if inside is None else np.asarray(inside),
        graph=snapped.graph(network),
    )


# ------------------------------------------------------------------ coverage by service category


def _subset(sources: EdgePositions, mask: np.ndarray) -> EdgePositions:
    return EdgePositions(sources.edge[mask], sources.offset_m[mask], sources.access_m[mask])


def offered_categories(
    positions: pd.DataFrame,
    teams: pd.DataFrame | None = None,
    *,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """Tell which position offers which service category.

    A position offers a category when its ``categories`` list (comma-separated codes) names it
    or when it hosts an active team of that category.

    Parameters
    ----------
    positions
        Practice positions with ``site_id`` and ``categories``.
    teams
        Volunteer teams with ``site_id``, ``category`` and ``active`` (optional).
    categories
        Category codes to report (default: all of :data:`geo.categories.CATEGORY_CODES`).

    Returns
    -------
    pandas.DataFrame
        Boolean, one row per position (same order) and one column per category.

    Raises
    ------
    UnknownCategoryError
        If a requested code is not a known category; the message lists the valid ones.
    """
    from geo.categories import CATEGORY_CODES, category

    codes = list(CATEGORY_CODES) if categories is None else [category(c).code for c in categories]
    listed = positions["categories"].fillna("").astype(str).str.split(",")
    hosted: pd.Series = pd.Series(dtype=object)
    if teams is not None and len(teams):
        active = teams[teams["active"].fillna(False).astype(bool)]
        hosted = active.groupby("site_id")["category"].agg(set)
    hosted_at = positions["site_id"].map(hosted)
    out = {}
    for code in codes:
        by_list = listed.map(lambda cats, c=code: c in cats).to_numpy(dtype=bool)
        by_team = hosted_at.map(lambda s, c=code: isinstance(s, set) and c in s)
        out[code] = by_list | by_team.to_numpy(dtype=bool)
    return pd.DataFrame(out, index=positions.index, columns=codes)


def category_coverages(
    network: WalkNetwork,
    positions: pd.DataFrame,
    cells: pd.DataFrame,
    *,
    teams: pd.DataFrame | None = None,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    categories: list[str] | None = None,
    inside: np.ndarray | None = None,
    cell_points: CellPoints | None = None,
    snap_m: float = DEFAULT_SNAP_M,
) -> dict[str, Coverage]:
    """Compute walking coverage separately for each service category.

    Positions and cell points are attached to the streets once; each category then costs one
    multi-source Dijkstra over the positions offering it (see :func:`offered_categories`).

    Parameters
    ----------
    network
        The walking network.
    positions
        Practice positions (WGS84 points) with ``site_id`` and ``categories``.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat`` (and polygons, as in :func:`coverage`).
    teams
        Volunteer teams; a position hosting an active team of a category offers it.
    minutes, walk_m_per_min
        The time limit and the walking pace.
    categories
        Category codes (default: all 8+N).
    inside
        Boolean per network node: inside the district outline (defaults to all).
    cell_points, snap_m
        Where each cell's residents are and how they reach the streets, as in :func:`coverage`.

    Returns
    -------
    dict
        A :class:`Coverage` per category code; a category no position offers has every cell
        unreachable (``inf`` minutes, no nearest site).

    Raises
    ------
    UnknownCategoryError
        If a code is not a known category.
    """
    _check(minutes, walk_m_per_min)
    offers = offered_categories(positions, teams, categories=categories)
    all_sources = attach_positions(network, positions)
    attached = attach_cells(network, _points_for(network, cells, cell_points), snap_m=snap_m)
    site_ids = positions["site_id"].to_numpy(dtype=object)
    cell_index = pd.Index(cells["cell_id"].to_numpy(), name="cell_id")
    inside_arr = np.ones(network.n_nodes, bool) if inside is None else np.asarray(inside)
    out: dict[str, Coverage] = {}
    for code in offers.columns:
        mask = offers[code].to_numpy()
        out[code] = _coverage(
            network, _subset(all_sources, mask), site_ids[mask], attached, cell_index,
            minutes=minutes, walk_m_per_min=walk_m_per_min, inside=inside_arr,
        )
    return out


def weighted_gini(values: np.ndarray, weights: np.ndarray) -> float:
    """Return the Gini coefficient of values held by weighted people.

    Computed from the Lorenz curve: ``1 - sum((P_i - P_{i-1}) * (L_i + L_{i-1}))`` over values
    sorted ascending, with ``P`` the cumulative share of people and ``L`` of the value. It is 0
    when everyone has the same value (including all zeros) and ``nan`` without people.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    x, w = x[keep], w[keep]
    if len(x) == 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    total = float(np.sum(w * x))
    if total <= 0:
        return 0.0
    p = np.concatenate([[0.0], np.cumsum(w) / np.sum(w)])
    lorenz = np.concatenate([[0.0], np.cumsum(w * x) / total])
    return float(1.0 - np.sum(np.diff(p) * (lorenz[1:] + lorenz[:-1])))


def access_stats(
    walk_minutes: np.ndarray,
    population: np.ndarray,
    *,
    minutes: float = 15.0,
    covered: np.ndarray | None = None,
) -> dict[str, float]:
    """Summarise residents' walking access.

    Parameters
    ----------
    walk_minutes
        Walking minutes per cell to the nearest position (``inf`` where none is reachable).
    population
        Residents per cell (a count or a relative index).
    minutes
        The time limit.
    covered
        Per-cell "within the limit" flags (default: ``walk_minutes <= minutes``).

    Returns
    -------
    dict
        ``residents``; ``residents_covered``; ``f15`` (share of residents within the limit);
        ``mean_minutes`` and ``gini`` (Gini of walking minutes across residents), both over
        residents who can reach a position at all; ``unreachable_share`` (residents who cannot).
        Shares are ``nan`` when there are no residents.
    """
    m = np.asarray(walk_minutes, dtype=float)
    pop = np.nan_to_num(np.asarray(population, dtype=float), nan=0.0)
    cov = m <= minutes if covered is None else np.asarray(covered, dtype=bool)
    reach = np.isfinite(m)
    total = float(pop.sum())
    reach_pop = float(pop[reach].sum())
    nan = float("nan")
    return {
        "residents": total,
        "residents_covered": float(pop[cov].sum()),
        "f15": float(pop[cov].sum() / total) if total > 0 else nan,
        "mean_minutes": float(np.sum(pop[reach] * m[reach]) / reach_pop) if reach_pop > 0 else nan,
        "gini": weighted_gini(m[reach], pop[reach]) if reach_pop > 0 else nan,
        "unreachable_share": float(1.0 - reach_pop / total) if total > 0 else nan,
    }


def _population(cells: pd.DataFrame, demand: pd.DataFrame | pd.Series) -> np.ndarray:
    pop = demand["population"] if isinstance(demand, pd.DataFrame) else demand
    return pop.reindex(cells["cell_id"].to_numpy()).fillna(0.0).to_numpy(dtype=float)


def category_coverage(
    network: WalkNetwork,
    positions: pd.DataFrame,
    cells: pd.DataFrame,
    demand: pd.DataFrame | pd.Series,
    *,
    teams: pd.DataFrame | None = None,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    categories: list[str] | None = None,
    cell_points: CellPoints | None = None,
    snap_m: float = DEFAULT_SNAP_M,
) -> pd.DataFrame:
    """Summarise residents' walking access to each service category.

    Parameters
    ----------
    network
        The walking network (e.g. from :func:`geo.profiles.network_for_profile`).
    positions
        Practice positions (WGS84 points) with ``site_id`` and ``categories``.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat`` (and polygons, as in :func:`coverage`).
    demand
        Residents per cell, indexed by ``cell_id`` (a ``population`` column or a Series), e.g.
        from :func:`geo.demand.cell_demand`; cells missing from it count as empty.
    teams
        Volunteer teams; a position hosting an active team of a category offers it.
    minutes, walk_m_per_min
        The time limit and the walking pace.
    categories
        Category codes (default: all 8+N).
    cell_points, snap_m
        Where each cell's residents are and how they reach the streets, as in :func:`coverage`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``category`` with ``name`` (zh), ``positions`` (how many offer it) and the
        fields of :func:`access_stats` (``f15``, ``mean_minutes``, ``gini``…).

    Raises
    ------
    UnknownCategoryError
        If a code is not a known category; the message lists the valid ones.
    """
    from geo.categories import category

    covs = category_coverages(
        network, positions, cells, teams=teams, minutes=minutes, walk_m_per_min=walk_m_per_min,
        categories=categories, cell_points=cell_points, snap_m=snap_m,
    )
    offers = offered_categories(positions, teams, categories=list(covs))
    pop = _population(cells, demand)
    rows = []
    for code, cov in covs.items():
        stats = access_stats(
            cov.cells["walk_minutes"].to_numpy(), pop, minutes=minutes,
            covered=cov.cells["covered"].to_numpy(),
        )
        rows.append({"category": code, "name": category(code).name,
                     "positions": int(offers[code].sum()), **stats})
    return pd.DataFrame(rows).set_index("category")
