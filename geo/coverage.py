"""Calculate walking minutes from every node and position to the nearest practice position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from geo.network import EdgePositions, WalkNetwork

#: GB 50180-2018 puts the 15-minute life circle at 800–1000 m of walking; the default reads
#: the upper bound as 1000 m in 15 minutes.
DEFAULT_WALK_M_PER_MIN = 1000.0 / 15.0
#: Slowest pace accepted (1.2 km/h): slower is no walk anyone plans for, and near zero it
#: makes every minute figure infinite.
MIN_WALK_M_PER_MIN = 20.0
#: Fastest pace accepted (12 km/h, a run).
MAX_WALK_M_PER_MIN = 200.0
_MIN_WEIGHT_M = 1e-6


@dataclass(frozen=True)
class NodeWalk:
    """Walking distance from each network node to its nearest source.

    ``source`` indexes the sources passed in (``-1`` where none is reachable); ``predecessor``
    lets a caller trace the route (indices over nodes, then one virtual node per source).
    """

    walk_m: np.ndarray
    source: np.ndarray
    predecessor: np.ndarray

    def minutes(self, walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN) -> np.ndarray:
        """Return walking minutes at the given pace."""
        return self.walk_m / walk_m_per_min


def graph_with_sources(network: WalkNetwork, sources: EdgePositions) -> sparse.csr_matrix:
    """Return the CSR graph with one virtual node per source, appended after the network's nodes.

    Each virtual node leads to both ends of its edge (access walk plus the walk along the edge);
    nothing leads into it, so no route passes through a source. Where both ends are one node
    (a loop), csgraph keeps the shorter of the two entries.
    """
    csr = network.csr
    n, s = network.n_nodes, len(sources)
    e = sources.edge
    to_u = np.maximum(sources.access_m + sources.offset_m, _MIN_WEIGHT_M)
    to_v = np.maximum(sources.access_m + network.length[e] - sources.offset_m, _MIN_WEIGHT_M)
    indptr = np.concatenate([csr.indptr, csr.indptr[-1] + 2 * np.arange(1, s + 1)])
    indices = np.concatenate([csr.indices, np.column_stack([network.u[e], network.v[e]]).ravel()])
    data = np.concatenate([csr.data, np.column_stack([to_u, to_v]).ravel()])
    return sparse.csr_matrix((data, indices, indptr), shape=(n + s, n + s))


def node_walk(network: WalkNetwork, sources: EdgePositions, *, limit_m: float = np.inf) -> NodeWalk:
    """Walk from many sources at once (one multi-source Dijkstra) to every node.

    Parameters
    ----------
    network
        The walking network.
    sources
        Source positions attached to edges (their access walk is included).
    limit_m
        Stop searching beyond this distance; farther nodes get ``inf`` and source ``-1``.
    """
    n = network.n_nodes
    if len(sources) == 0:
        inf = np.full(n, np.inf)
        return NodeWalk(inf, np.full(n, -1), np.full(n, -9999))
    graph = graph_with_sources(network, sources)
    dist, pred, src = dijkstra(
        graph,
        directed=True,
        indices=np.arange(n, n + len(sources)),
        min_only=True,
        return_predecessors=True,
        limit=limit_m,
    )
    source = np.where(src[:n] >= 0, src[:n] - n, -1)
    return NodeWalk(dist[:n], source, pred)


def position_walk(
    network: WalkNetwork, nodes: NodeWalk, positions: EdgePositions, sources: EdgePositions
) -> tuple[np.ndarray, np.ndarray]:
    """Return walking metres and nearest source for positions on edges, access walks included.

    A position reaches its source through either end of its edge, or straight along the edge
    when the source sits on the same edge.
    """
    e = positions.edge
    via_u = nodes.walk_m[network.u[e]] + positions.offset_m
    via_v = nodes.walk_m[network.v[e]] + network.length[e] - positions.offset_m
    use_u = via_u <= via_v
    best = np.where(use_u, via_u, via_v)
    source = np.where(use_u, nodes.source[network.u[e]], nodes.source[network.v[e]])

    same = pd.merge(
        pd.DataFrame({"edge": e, "p": np.arange(len(e)), "p_off": positions.offset_m}),
        pd.DataFrame(
            {
                "edge": sources.edge,
                "s": np.arange(len(sources)),
                "s_off": sources.offset_m,
                "s_acc": sources.access_m,
            }
        ),
        on="edge",
    )
    if len(same):
        along = np.abs(same.p_off.to_numpy() - same.s_off.to_numpy()) + same.s_acc.to_numpy()
        p = same.p.to_numpy()
        order = np.lexsort((along, p))  # shortest first per position
        p, along, s = p[order], along[order], same.s.to_numpy()[order]
        first = np.r_[True, p[1:] != p[:-1]]
        p, along, s = p[first], along[first], s[first]
        better = along < best[p]
        best[p[better]] = along[better]
        source[p[better]] = s[better]
    walk_m = best + positions.access_m
    return walk_m, np.where(np.isfinite(walk_m), source, -1)


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
    sources = network.attach(lon, lat)
    nodes = node_walk(network, sources)
    return pd.DataFrame(
        {
            "walk_m": nodes.walk_m,
            "walk_minutes": nodes.walk_m / walk_m_per_min,
            "nearest": nodes.source,
        },
        index=network.node_index,
    )


@dataclass(frozen=True)
class Coverage:
    """Walking minutes from every node and grid cell to its nearest practice position.

    ``nodes`` is indexed by ``osmid`` and ``cells`` by ``cell_id``; both carry ``walk_m``,
    ``walk_minutes``, ``nearest_site`` (a ``site_id``) and ``covered`` (within the limit).
    """

    nodes: pd.DataFrame
    cells: pd.DataFrame
    minutes: float
    walk_m_per_min: float

    @property
    def limit_m(self) -> float:
        """The walking distance the time limit allows."""
        return self.minutes * self.walk_m_per_min

    def covered_node_share(self) -> float:
        """Share of the district's own nodes (margin excluded) within the limit."""
        inside = self.nodes[self.nodes["inside"]]
        return float(inside["covered"].mean()) if len(inside) else 0.0

    def covered_cell_share(self) -> float:
        """Share of grid cells whose centre is within the limit."""
        return float(self.cells["covered"].mean()) if len(self.cells) else 0.0


def coverage(
    network: WalkNetwork,
    positions: pd.DataFrame,
    cells: pd.DataFrame,
    *,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    inside: np.ndarray | None = None,
) -> Coverage:
    """Compute walking coverage of nodes and grid cells from practice positions.

    Parameters
    ----------
    network
        The walking network.
    positions
        Practice positions (WGS84 points) with a ``site_id`` column.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat`` (cell centre).
    minutes
        The time limit.
    walk_m_per_min
        Walking pace.
    inside
        Boolean per network node: inside the district outline (defaults to all).
    """
    if minutes <= 0 or walk_m_per_min <= 0:
        msg = "minutes and walk_m_per_min must be positive"
        raise ValueError(msg)
    geom = positions.geometry
    sources = network.attach(geom.x.to_numpy(), geom.y.to_numpy())
    nodes = node_walk(network, sources)
    site_ids = np.array([*positions["site_id"].tolist(), None], dtype=object)
    limit = minutes * walk_m_per_min
    node_df = pd.DataFrame(
        {
            "walk_m": nodes.walk_m,
            "walk_minutes": nodes.walk_m / walk_m_per_min,
            "nearest_site": site_ids[nodes.source],
            "covered": nodes.walk_m <= limit,
            "inside": np.ones(network.n_nodes, bool) if inside is None else np.asarray(inside),
        },
        index=network.node_index,
    )
    at = network.attach(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    cell_m, cell_src = position_walk(network, nodes, at, sources)
    cell_df = pd.DataFrame(
        {
            "walk_m": cell_m,
            "walk_minutes": cell_m / walk_m_per_min,
            "nearest_site": site_ids[cell_src],
            "covered": cell_m <= limit,
            "access_m": at.access_m,
        },
        index=pd.Index(cells["cell_id"].to_numpy(), name="cell_id"),
    )
    return Coverage(node_df, cell_df, minutes, walk_m_per_min)


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
) -> dict[str, Coverage]:
    """Compute walking coverage separately for each service category.

    Positions and cell centres are attached to the streets once; each category then costs one
    multi-source Dijkstra over the positions offering it (see :func:`offered_categories`).

    Parameters
    ----------
    network
        The walking network.
    positions
        Practice positions (WGS84 points) with ``site_id`` and ``categories``.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat``.
    teams
        Volunteer teams; a position hosting an active team of a category offers it.
    minutes, walk_m_per_min
        The time limit and the walking pace.
    categories
        Category codes (default: all 8+N).
    inside
        Boolean per network node: inside the district outline (defaults to all).

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
    if minutes <= 0 or walk_m_per_min <= 0:
        msg = "minutes and walk_m_per_min must be positive"
        raise ValueError(msg)
    offers = offered_categories(positions, teams, categories=categories)
    geom = positions.geometry
    all_sources = network.attach(geom.x.to_numpy(), geom.y.to_numpy())
    at = network.attach(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    site_ids = positions["site_id"].to_numpy(dtype=object)
    limit = minutes * walk_m_per_min
    node_index = pd.Index(network.node_ids, name="osmid")
    cell_index = pd.Index(cells["cell_id"].to_numpy(), name="cell_id")
    inside_arr = np.ones(network.n_nodes, bool) if inside is None else np.asarray(inside)
    out: dict[str, Coverage] = {}
    for code in offers.columns:
        mask = offers[code].to_numpy()
        sources = _subset(all_sources, mask)
        ids = np.append(site_ids[mask], np.array([None], dtype=object))
        nodes = node_walk(network, sources)
        cell_m, cell_src = position_walk(network, nodes, at, sources)
        node_df = pd.DataFrame(
            {
                "walk_m": nodes.walk_m,
                "walk_minutes": nodes.walk_m / walk_m_per_min,
                "nearest_site": ids[nodes.source],
                "covered": nodes.walk_m <= limit,
                "inside": inside_arr,
            },
            index=node_index,
        )
        cell_df = pd.DataFrame(
            {
                "walk_m": cell_m,
                "walk_minutes": cell_m / walk_m_per_min,
                "nearest_site": ids[cell_src],
                "covered": cell_m <= limit,
                "access_m": at.access_m,
            },
            index=cell_index,
        )
        out[code] = Coverage(node_df, cell_df, minutes, walk_m_per_min)
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
) -> pd.DataFrame:
    """Summarise residents' walking access to each service category.

    Parameters
    ----------
    network
        The walking network (e.g. from :func:`geo.profiles.network_for_profile`).
    positions
        Practice positions (WGS84 points) with ``site_id`` and ``categories``.
    cells
        Grid cells with ``cell_id``, ``lon`` and ``lat``.
    demand
        Residents per cell, indexed by ``cell_id`` (a ``population`` column or a Series), e.g.
        from :func:`geo.demand.cell_demand`; cells missing from it count as empty.
    teams
        Volunteer teams; a position hosting an active team of a category offers it.
    minutes, walk_m_per_min
        The time limit and the walking pace.
    categories
        Category codes (default: all 8+N).

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
        categories=categories,
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
