"""Walk on the street network: points attached to edges, shortest-walk searches and routes.

Every walk in the package follows one rule. A point (a practice position, a resident, a cell's
housing) joins the network part-way along a street edge (:class:`geo.network.EdgePositions`:
the edge, metres from its ``u`` end, and the straight access walk onto it). A *source* enters
the search as one virtual node leading to both ends of its edge; a *target* is reached through
either end of its edge, or straight along the edge when its source sits on the same edge; both
access walks are included. The searches are ``scipy.sparse.csgraph.dijkstra`` over CSR arrays:
one multi-source search for the nearest source of every node (:func:`node_walk`), one row per
source (:func:`source_walks`), or batches cut off at a limit (:func:`searches`, :func:`reach`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from geo.network import EdgePositions, WalkNetwork

#: Sources per cut-off Dijkstra call (bounds the dense distance block to about 40 MB on 20,000
#: nodes).
DEFAULT_BATCH = 256
# Edge weights must stay positive: csgraph would read an explicit zero as "no edge".
_MIN_WEIGHT_M = 1e-6


# ------------------------------------------------------------------------------- searching


def graph_with_sources(network: WalkNetwork, sources: EdgePositions) -> sparse.csr_matrix:
    """Return the CSR graph with one virtual node per source, appended after the network's nodes.

    Each virtual node leads to both ends of its edge (access walk plus the walk along the edge);
    nothing leads into it, so no route passes through a source. Where both ends are one node
    (a loop), csgraph keeps the shorter of the two entries. A caller searching repeatedly from
    the same sources can build it once (:func:`node_walk` takes it as ``graph``).
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


@dataclass(frozen=True)
class NodeWalk:
    """Walking distance from each network node to its nearest source.

    ``source`` indexes the sources passed in (``-1`` where none is reachable); ``predecessor``
    lets a caller trace the route (indices over nodes, then one virtual node per source).
    """

    walk_m: np.ndarray
    source: np.ndarray
    predecessor: np.ndarray

    def minutes(self, walk_m_per_min: float) -> np.ndarray:
        """Return walking minutes at the given pace."""
        return self.walk_m / walk_m_per_min


def node_walk(
    network: WalkNetwork,
    sources: EdgePositions,
    *,
    limit_m: float = np.inf,
    graph: sparse.csr_matrix | None = None,
) -> NodeWalk:
    """Walk from many sources at once (one multi-source Dijkstra) to every node.

    Parameters
    ----------
    network
        The walking network.
    sources
        Source positions attached to edges (their access walk is included).
    limit_m
        Stop searching beyond this distance; farther nodes get ``inf`` and source ``-1``.
    graph
        :func:`graph_with_sources` of ``network`` and ``sources``, when the caller keeps it for
        repeated searches from the same sources (default: built for this call).

    Raises
    ------
    ValueError
        If ``graph`` does not have one node per network node and source.
    """
    n, s = network.n_nodes, len(sources)
    if graph is not None and graph.shape != (n + s, n + s):
        msg = f"graph has shape {graph.shape}, not {(n + s, n + s)} (nodes and sources)"
        raise ValueError(msg)
    if s == 0:
        inf = np.full(n, np.inf)
        return NodeWalk(inf, np.full(n, -1), np.full(n, -9999))
    if graph is None:
        graph = graph_with_sources(network, sources)
    dist, pred, src = dijkstra(
        graph,
        directed=True,
        indices=np.arange(n, n + s),
        min_only=True,
        return_predecessors=True,
        limit=limit_m,
    )
    source = src[:n] - n  # virtual source nodes come after the n nodes; unreached: -9999 - n
    np.maximum(source, -1, out=source)
    return NodeWalk(dist[:n], source, pred)


def source_walks(
    network: WalkNetwork, sources: EdgePositions, *, limit_m: float = np.inf
) -> np.ndarray:
    """Return walking metres from each source (row) to each node (column).

    One Dijkstra over all sources, keeping every row (not reduced to the nearest): a sources x
    nodes array, ``inf`` beyond ``limit_m`` or where a node cannot be reached.
    """
    n, s = network.n_nodes, len(sources)
    if s == 0:
        return np.empty((0, n))
    graph = graph_with_sources(network, sources)
    dist = dijkstra(graph, directed=True, indices=np.arange(n, n + s), min_only=False,
                    limit=limit_m)
    return np.ascontiguousarray(np.atleast_2d(dist)[:, :n])


def searches(
    network: WalkNetwork,
    sources: EdgePositions,
    *,
    limit_m: float,
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Search from the sources a batch at a time, each search cut off at ``limit_m``.

    Yields
    ------
    sources, walk_m
        The indices of a batch of sources and their (batch x nodes) walking metres, ``inf``
        beyond the limit.
    """
    n, s = network.n_nodes, len(sources)
    if s == 0:
        return
    graph = graph_with_sources(network, sources)
    step = max(int(batch_size), 1)
    for start in range(0, s, step):
        idx = np.arange(start, min(start + step, s))
        dist = dijkstra(graph, directed=True, indices=n + idx, limit=limit_m)
        yield idx, np.atleast_2d(dist)[:, :n]


# ---------------------------------------------------------------------- entering the edges


@dataclass(frozen=True)
class Entry:
    """How each target is reached from its nearest source.

    ``walk_m`` includes both access walks (``inf`` when no source is reachable); ``source``
    indexes the sources (``-1`` when none); ``via`` is the node through which the walk enters
    the target's edge, or ``-1`` when it goes straight along an edge the source shares.
    """

    walk_m: np.ndarray
    source: np.ndarray
    via: np.ndarray


def _shared_edges(targets: EdgePositions, sources: EdgePositions) -> tuple[np.ndarray, np.ndarray]:
    """Return every (target, source) pair on one edge, sources in index order per target."""
    order = np.argsort(sources.edge, kind="stable")
    on = sources.edge[order]
    lo = np.searchsorted(on, targets.edge, side="left")
    count = np.searchsorted(on, targets.edge, side="right") - lo
    t = np.repeat(np.arange(len(targets)), count)
    within = np.arange(len(t)) - np.repeat(np.cumsum(count) - count, count)
    return t, order[np.repeat(lo, count) + within]


def _along(targets: EdgePositions, sources: EdgePositions, t: np.ndarray,
           s: np.ndarray) -> np.ndarray:
    """Return metres from a source straight along a shared edge to a target (source access in)."""
    return np.abs(targets.offset_m[t] - sources.offset_m[s]) + sources.access_m[s]


def enter(
    network: WalkNetwork, nodes: NodeWalk, targets: EdgePositions, sources: EdgePositions
) -> Entry:
    """Walk from the nearest source to targets on edges (the package's edge-entry rule).

    A target is entered through either end of its edge (the node's walk plus the metres along
    the edge to the target's foot), or straight along the edge from a source on the same edge;
    the shorter wins (an end on a tie), and the target's access walk is added.

    Parameters
    ----------
    network
        The walking network.
    nodes
        The nearest-source walk to every node (:func:`node_walk` from ``sources``).
    targets
        Points attached to edges.
    sources
        The sources ``nodes`` was searched from.
    """
    e = targets.edge
    via_u = nodes.walk_m[network.u[e]] + targets.offset_m
    via_v = nodes.walk_m[network.v[e]] + network.length[e] - targets.offset_m
    use_u = via_u <= via_v
    best = np.where(use_u, via_u, via_v)
    via = np.where(use_u, network.u[e], network.v[e])
    source = nodes.source[via]
    t, s = _shared_edges(targets, sources)
    if len(t):
        along = _along(targets, sources, t, s)
        order = np.lexsort((along, t))  # shortest first per target, ties to the lower source
        t, along, s = t[order], along[order], s[order]
        first = np.r_[True, t[1:] != t[:-1]]
        t, along, s = t[first], along[first], s[first]
        better = along < best[t]
        best[t[better]] = along[better]
        source[t[better]] = s[better]
        via[t[better]] = -1
    walk_m = best + targets.access_m
    reached = np.isfinite(walk_m)
    return Entry(walk_m, np.where(reached, source, -1), np.where(reached, via, -1))


def enter_each(
    network: WalkNetwork, walks: np.ndarray, targets: EdgePositions, sources: EdgePositions
) -> np.ndarray:
    """Walk from every source to every target by the rule of :func:`enter`.

    Parameters
    ----------
    network
        The walking network.
    walks
        Sources x nodes walking metres (:func:`source_walks`).
    targets
        Points attached to edges.
    sources
        The sources, one per row of ``walks``.

    Returns
    -------
    numpy.ndarray
        Sources x targets walking metres, both access walks included.
    """
    e = targets.edge
    via_u = walks[:, network.u[e]] + targets.offset_m
    via_v = walks[:, network.v[e]] + (network.length[e] - targets.offset_m)
    best = np.minimum(via_u, via_v)
    t, s = _shared_edges(targets, sources)
    if len(t):  # a source on the same street edge walks straight along it
        best[s, t] = np.minimum(best[s, t], _along(targets, sources, t, s))
    return best + targets.access_m


@dataclass(frozen=True)
class Reach:
    """Target-source pairs within a walking limit, with the walk (access walks included)."""

    target: np.ndarray
    source: np.ndarray
    walk_m: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def reach(
    network: WalkNetwork,
    sources: EdgePositions,
    targets: EdgePositions,
    *,
    limit_m: float,
    batch_size: int = DEFAULT_BATCH,
) -> Reach:
    """Find every target within ``limit_m`` of each source, by the rule of :func:`enter`.

    The searches are cut off at the limit (:func:`searches`); only nodes within it are looked
    at, and only the targets on edges ending at them, so no dense sources x targets array is
    formed.

    Returns
    -------
    Reach
        One row per (target, source) pair within the limit, with the shortest walk.
    """
    n = network.n_nodes
    # Target "ends": each target is entered from both ends of its edge, some metres along it.
    end_node = np.concatenate([network.u[targets.edge], network.v[targets.edge]])
    end_add = np.concatenate([targets.offset_m, network.length[targets.edge] - targets.offset_m])
    end_target = np.tile(np.arange(len(targets)), 2)
    order = np.argsort(end_node, kind="stable")
    end_node, end_add, end_target = end_node[order], end_add[order], end_target[order]
    ptr = np.searchsorted(end_node, np.arange(n + 1))

    tt: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    ww: list[np.ndarray] = []
    for idx, dist in searches(network, sources, limit_m=limit_m, batch_size=batch_size):
        b, node = np.nonzero(dist <= limit_m)
        d = dist[b, node]
        count = ptr[node + 1] - ptr[node]
        pair = np.repeat(np.arange(len(node)), count)
        within = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
        end = ptr[node][pair] + within
        target = end_target[end]
        walk = (d[pair] + end_add[end]) + targets.access_m[target]
        ok = walk <= limit_m
        tt.append(target[ok])
        ss.append(idx[b[pair[ok]]])
        ww.append(walk[ok])
    t, s = _shared_edges(targets, sources)
    walk = _along(targets, sources, t, s) + targets.access_m[t]
    ok = walk <= limit_m
    tt.append(t[ok])
    ss.append(s[ok])
    ww.append(walk[ok])

    target, source, walk_m = np.concatenate(tt), np.concatenate(ss), np.concatenate(ww)
    order = np.lexsort((walk_m, source, target))  # keep each pair's shortest walk
    target, source, walk_m = target[order], source[order], walk_m[order]
    first = np.r_[True, (target[1:] != target[:-1]) | (source[1:] != source[:-1])]
    return Reach(target[first], source[first], walk_m[first])


def best_of(walk_m: np.ndarray, owner: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Take each point's best attachment (a point attached to several streets walks the best).

    Parameters
    ----------
    walk_m
        Walking metres per attachment.
    owner
        The point each attachment belongs to (see :meth:`geo.network.WalkNetwork.attach_near`).
    n_points
        Number of points; each must own at least one attachment.

    Returns
    -------
    walk_m, attachment
        Per point: the shortest walk and the attachment giving it (the first on a tie).
    """
    order = np.arange(len(owner))
    if np.any(owner[1:] < owner[:-1]):  # attach_near groups them already
        order = np.argsort(owner, kind="stable")
    own = owner[order]
    start = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    if len(start) != n_points or (n_points and (own[0] != 0 or own[-1] != n_points - 1)):
        msg = f"{n_points} points but {len(start)} of them attached to the network"
        raise ValueError(msg)
    walk = walk_m[order]
    best = np.minimum.reduceat(walk, start) if n_points else walk[:0]
    hit = np.flatnonzero(walk == np.repeat(best, np.diff(np.r_[start, len(walk)])))
    first = hit[np.r_[True, own[hit][1:] != own[hit][:-1]]]
    return best, order[first]


# ------------------------------------------------------------------------------------ routes


def _edge_between(network: WalkNetwork, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the edge each step ``a[i] -> b[i]`` walks: the shortest joining the two nodes."""
    n = np.int64(network.n_nodes)
    lo = np.minimum(network.u, network.v).astype(np.int64)
    hi = np.maximum(network.u, network.v).astype(np.int64)
    key = lo * n + hi
    want = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b).astype(np.int64)
    cand = np.flatnonzero(np.isin(key, want))
    cand = cand[np.lexsort((network.length[cand], key[cand]))]  # shortest first per pair
    keys = key[cand]
    return cand[np.searchsorted(keys, want)]


def _piece(geom: shapely.LineString, start: float, end: float) -> np.ndarray:
    """Return an edge's coordinates from one fraction of its length to another (either way)."""
    part = substring(geom, min(max(start, 0.0), 1.0), min(max(end, 0.0), 1.0), normalized=True)
    return shapely.get_coordinates(part)


def routes(
    network: WalkNetwork,
    nodes: NodeWalk,
    sources: EdgePositions,
    targets: EdgePositions,
    entry: Entry,
    which: Sequence[int],
    *,
    source_xy: np.ndarray,
    target_xy: np.ndarray,
) -> list[np.ndarray]:
    """Draw the walks :func:`enter` measured, in the network's metric CRS.

    Each route runs from the source's door onto its street, along it to the first node, along
    the node path the search took, along the target's edge from the entry node, and onto the
    target's door; or from street to street straight along a shared edge.

    Parameters
    ----------
    network
        The walking network.
    nodes
        The search (with predecessors) from ``sources``.
    sources, targets
        The attached sources and targets.
    entry
        :func:`enter` of ``targets`` from ``sources`` over ``nodes``.
    which
        The targets to draw (reachable ones).
    source_xy, target_xy
        Metric ``(x, y)`` rows of the sources' and the targets' doors.

    Returns
    -------
    list of numpy.ndarray
        One ``(k, 2)`` array of metric coordinates per target in ``which``, repeated points
        dropped.
    """
    n = network.n_nodes
    geoms = network.edges_metric
    length = network.length
    out = []
    for t in which:
        s = int(entry.source[t])
        if s < 0:
            msg = f"target {t} is not reachable from any source"
            raise ValueError(msg)
        e_s, e_t = int(sources.edge[s]), int(targets.edge[t])
        f_s = float(sources.offset_m[s] / length[e_s])
        f_t = float(targets.offset_m[t] / length[e_t])
        parts = [source_xy[s][None, :]]
        via = int(entry.via[t])
        if via < 0:  # straight along the shared edge
            parts.append(_piece(geoms[e_t], f_s, f_t))
        else:
            path = [via]
            while nodes.predecessor[path[-1]] < n:
                path.append(int(nodes.predecessor[path[-1]]))
            path.reverse()
            first = path[0]
            parts.append(_piece(geoms[e_s], f_s, 0.0 if first == network.u[e_s] else 1.0))
            if len(path) > 1:
                a, b = np.asarray(path[:-1]), np.asarray(path[1:])
                for i, e in enumerate(_edge_between(network, a, b).tolist()):
                    xy = shapely.get_coordinates(geoms[e])
                    parts.append(xy if a[i] == network.u[e] else xy[::-1])
            parts.append(_piece(geoms[e_t], 0.0 if via == network.u[e_t] else 1.0, f_t))
        parts.append(target_xy[t][None, :])
        xy = np.concatenate(parts)
        keep = np.r_[True, np.any(np.abs(np.diff(xy, axis=0)) > 1e-6, axis=1)]
        out.append(xy[keep])
    return out
