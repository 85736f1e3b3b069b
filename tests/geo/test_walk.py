"""The walking engine on real 小店区: every search and the edge-entry rule against networkx."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

import geo
from geo.network import EdgePositions, WalkNetwork
from geo.walk import (
    best_of,
    enter,
    enter_each,
    graph_with_sources,
    node_walk,
    reach,
    routes,
    searches,
    source_walks,
)
from tests.geo.test_coverage import Reference, reference_search

TOL_M = 1e-6


@pytest.fixture(scope="module")
def network(district: geo.District) -> WalkNetwork:
    return district.network


@pytest.fixture(scope="module")
def sources(district: geo.District, network: WalkNetwork) -> EdgePositions:
    geom = district.positions.geometry
    return network.attach(geom.x.to_numpy(), geom.y.to_numpy())


@pytest.fixture(scope="module")
def ref(district: geo.District, sources: EdgePositions) -> Reference:
    return reference_search(district, sources)


@pytest.fixture(scope="module")
def targets(district: geo.District, network: WalkNetwork,
            sources: EdgePositions) -> tuple[EdgePositions, np.ndarray]:
    """Random points over the network, plus points on the sites' own edges (the along case)."""
    rng = np.random.default_rng(17)
    x0, y0, x1, y1 = network.bounds_metric
    xy = np.column_stack([rng.uniform(x0, x1, 30), rng.uniform(y0, y1, 30)])
    geoms = network.edges_metric
    on = shapely.line_interpolate_point(geoms[sources.edge[:10]], 0.5, normalized=True)
    xy = np.vstack([xy, shapely.get_coordinates(on) + 3.0])
    ll = gpd.GeoSeries(shapely.points(xy), crs=network.crs_metric).to_crs("EPSG:4326")
    lon, lat = ll.x.to_numpy(), ll.y.to_numpy()
    return network.attach(lon, lat), xy


def nx_point_walks(district: geo.District, sources: EdgePositions,
                   targets: EdgePositions) -> np.ndarray:
    """Sources x targets metres with networkx: both as nodes joined to their edge's ends."""
    G = nx.Graph()
    for u, v, length in zip(district.edges["u"], district.edges["v"], district.edges["length"],
                            strict=True):
        if u != v and (not G.has_edge(u, v) or G[u][v]["w"] > length):
            G.add_edge(int(u), int(v), w=float(length))
    us, vs = district.edges["u"].to_numpy(), district.edges["v"].to_numpy()
    lengths = district.edges["length"].to_numpy()

    def join(name: tuple[str, int], e: int, off: float, acc: float) -> None:
        for end, w in ((int(us[e]), acc + off), (int(vs[e]), acc + lengths[e] - off)):
            if not G.has_edge(name, end) or G[name][end]["w"] > w:
                G.add_edge(name, end, w=float(w))

    for i in range(len(sources)):
        join(("s", i), int(sources.edge[i]), sources.offset_m[i], sources.access_m[i])
    for j in range(len(targets)):
        join(("t", j), int(targets.edge[j]), targets.offset_m[j], targets.access_m[j])
        for i in np.flatnonzero(sources.edge == targets.edge[j]).tolist():  # along the edge
            w = abs(targets.offset_m[j] - sources.offset_m[i]) + sources.access_m[i] + \
                targets.access_m[j]
            G.add_edge(("s", int(i)), ("t", j), w=float(w))
    out = np.full((len(sources), len(targets)), np.inf)
    for j in range(len(targets)):
        d = nx.single_source_dijkstra_path_length(G, ("t", j), weight="w")
        out[:, j] = [d.get(("s", i), np.inf) for i in range(len(sources))]
    return out


@pytest.fixture(scope="module")
def expected(district: geo.District, sources: EdgePositions,
             targets: tuple[EdgePositions, np.ndarray]) -> np.ndarray:
    return nx_point_walks(district, sources, targets[0])


def test_source_walks_are_networkx_per_site(network: WalkNetwork, sources: EdgePositions,
                                            ref: Reference) -> None:
    walks = source_walks(network, sources)
    assert walks.shape == (len(sources), network.n_nodes)
    np.testing.assert_allclose(walks, ref.by_site, rtol=0, atol=TOL_M)
    # Cut off: beyond the limit is inf, within it unchanged; batches give the same rows.
    cut = source_walks(network, sources, limit_m=500.0)
    assert np.isinf(cut[ref.by_site > 500.0 + TOL_M]).all()
    np.testing.assert_allclose(cut[ref.by_site <= 500.0], ref.by_site[ref.by_site <= 500.0],
                               rtol=0, atol=TOL_M)
    rows = np.vstack([d for _, d in searches(network, sources, limit_m=500.0, batch_size=7)])
    np.testing.assert_array_equal(rows, cut)
    assert source_walks(network, EdgePositions(*(np.empty(0),) * 3)).shape == (0, network.n_nodes)


def test_node_walk_on_a_kept_graph(network: WalkNetwork, sources: EdgePositions,
                                   ref: Reference) -> None:
    """A source graph built once (as coverage keeps it per registry) gives the same searches."""
    graph = graph_with_sources(network, sources)
    expected = ref.by_site.min(axis=0)
    for limit in (np.inf, 500.0):
        fresh = node_walk(network, sources, limit_m=limit)
        kept = node_walk(network, sources, limit_m=limit, graph=graph)
        np.testing.assert_array_equal(kept.walk_m, fresh.walk_m)
        np.testing.assert_array_equal(kept.source, fresh.source)
        np.testing.assert_array_equal(kept.predecessor, fresh.predecessor)
        # Against networkx: each node's walk, a source at that walk, -1 beyond the limit.
        near = expected <= limit - TOL_M
        far = expected > limit + TOL_M
        np.testing.assert_allclose(kept.walk_m[near], expected[near], rtol=0, atol=TOL_M)
        np.testing.assert_allclose(ref.by_site[kept.source[near], np.flatnonzero(near)],
                                   expected[near], rtol=0, atol=TOL_M)
        assert np.isinf(kept.walk_m[far]).all() and (kept.source[far] == -1).all()
        assert far.any() == np.isfinite(limit)
    with pytest.raises(ValueError, match="graph has shape"):  # built for other sources
        node_walk(network, EdgePositions(sources.edge[:3], sources.offset_m[:3],
                                         sources.access_m[:3]), graph=graph)


def test_enter_each_matches_networkx(network: WalkNetwork, sources: EdgePositions,
                                     targets: tuple[EdgePositions, np.ndarray],
                                     expected: np.ndarray) -> None:
    at, _ = targets
    got = enter_each(network, source_walks(network, sources), at, sources)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_M)
    # The along case happens and matters: a site on the target's edge, nearer than via the ends.
    same = at.edge[None, :] == sources.edge[:, None]
    assert same.sum() >= 10


def test_enter_is_the_nearest_source(network: WalkNetwork, sources: EdgePositions,
                                     targets: tuple[EdgePositions, np.ndarray],
                                     expected: np.ndarray) -> None:
    at, _ = targets
    entry = enter(network, node_walk(network, sources), at, sources)
    best = expected.min(axis=0)
    np.testing.assert_allclose(entry.walk_m, best, rtol=0, atol=TOL_M)
    np.testing.assert_allclose(expected[entry.source, np.arange(len(at))], best, rtol=0,
                               atol=TOL_M)
    along = entry.via < 0
    assert along.sum() >= 5  # straight along a shared edge for the points beside the sites
    assert (at.edge[along] == sources.edge[entry.source[along]]).all()


def test_reach_is_every_pair_within_the_limit(network: WalkNetwork, sources: EdgePositions,
                                              targets: tuple[EdgePositions, np.ndarray],
                                              expected: np.ndarray) -> None:
    at, _ = targets
    for limit in (300.0, 1000.0):
        r = reach(network, sources, at, limit_m=limit, batch_size=9)
        got = np.full(expected.shape, np.inf)
        got[r.source, r.target] = r.walk_m
        clear = np.abs(expected - limit) > 1e-6
        np.testing.assert_array_equal(np.isfinite(got)[clear], (expected <= limit)[clear])
        ok = np.isfinite(got)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=0, atol=TOL_M)
        assert len(r) == len(set(zip(r.target.tolist(), r.source.tolist(), strict=True)))
        assert 0 < ok.mean() < 1


def test_routes_are_the_walks_measured(district: geo.District, network: WalkNetwork,
                                       sources: EdgePositions,
                                       targets: tuple[EdgePositions, np.ndarray]) -> None:
    at, xy = targets
    nodes = node_walk(network, sources)
    entry = enter(network, nodes, at, sources)
    geom = district.positions.geometry
    site_xy = shapely.get_coordinates(network.to_metric(geom.x.to_numpy(), geom.y.to_numpy()))
    which = np.flatnonzero(np.isfinite(entry.walk_m)).tolist()
    lines = routes(network, nodes, sources, at, entry, which, source_xy=site_xy, target_xy=xy)
    for t, line in zip(which, lines, strict=True):
        np.testing.assert_allclose(line[0], site_xy[entry.source[t]], atol=1e-6)
        np.testing.assert_allclose(line[-1], xy[t], atol=1e-6)
        # Metric length against great-circle metres: within a percent (or a few metres).
        assert shapely.LineString(line).length == pytest.approx(entry.walk_m[t], rel=0.01, abs=3)


def test_best_of_takes_each_points_shortest_walk() -> None:
    walk = np.array([5.0, 3.0, np.inf, 2.0, 2.0, 7.0, np.inf])
    owner = np.array([1, 1, 0, 2, 2, 1, 3])  # any order; ties go to the first attachment
    best, att = best_of(walk, owner, 4)
    np.testing.assert_array_equal(best, [np.inf, 3.0, 2.0, np.inf])
    np.testing.assert_array_equal(att, [2, 1, 3, 6])
    with pytest.raises(ValueError, match="5 points but 4"):
        best_of(walk, owner, 5)
