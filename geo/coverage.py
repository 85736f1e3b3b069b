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


def _with_sources(network: WalkNetwork, sources: EdgePositions) -> sparse.csr_matrix:
    """Append one virtual node per source, linked to both ends of its edge by the access walk."""
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
    graph = _with_sources(network, sources)
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
        index=pd.Index(network.node_ids, name="osmid"),
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
        index=pd.Index(network.node_ids, name="osmid"),
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
