"""Walking coverage on the real 小店区 network, checked against independent networkx searches."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

import geo
from geo.coverage import coverage, position_walk_minutes, walk_minutes
from geo.grid import CellPoints
from geo.network import MAX_ACCESS_M, EdgePositions, WalkNetwork

TOL_M = 1e-6


# ------------------------------------------------------------------ independent reference


def _metric_edges(district: geo.District) -> np.ndarray:
    """Edge geometries in the district's metric CRS, each oriented from its ``u`` node."""
    crs = district.meta["crs_metric"]
    geoms = district.edges.geometry.to_crs(crs).to_numpy()
    nodes = district.nodes.geometry.to_crs(crs)
    u_pt = nodes.loc[district.edges["u"]].to_numpy()
    v_pt = nodes.loc[district.edges["v"]].to_numpy()
    first = shapely.get_point(geoms, 0)
    flip = shapely.distance(first, v_pt) < shapely.distance(first, u_pt)
    return np.where(flip, shapely.reverse(geoms), geoms)


def _metric_points(district: geo.District, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    return pts.to_crs(district.meta["crs_metric"]).to_numpy()


def attachable(district: geo.District, dist: np.ndarray) -> np.ndarray:
    """Keep the distances (points x edges) to the streets a point may attach to, others inf.

    No bridge or tunnel while a ground street is within MAX_ACCESS_M, else every street.
    """
    raised = district.edges["elevated"].to_numpy(dtype=bool)
    ground = np.where(raised[None, :], np.inf, dist)
    return np.where((ground.min(axis=1) <= MAX_ACCESS_M)[:, None], ground, dist)


def check_attach(district: geo.District, edges_m: np.ndarray, pts_m: np.ndarray,
                 at: EdgePositions) -> None:
    """Brute force: the attached edge is a nearest edge, at the attached distance and offset."""
    # every point to every edge it may attach to
    dist = attachable(district, shapely.distance(pts_m[:, None], edges_m[None, :]))
    nearest = dist.min(axis=1)
    np.testing.assert_allclose(at.access_m, nearest, rtol=0, atol=TOL_M)
    rows = np.arange(len(pts_m))
    np.testing.assert_allclose(dist[rows, at.edge], nearest, rtol=0, atol=TOL_M)
    # The point at offset_m along the edge (offsets are in the edge's `length` metres) is the
    # foot of the access walk.
    length = district.edges["length"].to_numpy()[at.edge]
    geom = edges_m[at.edge]
    foot = shapely.line_interpolate_point(geom, at.offset_m / length, normalized=True)
    np.testing.assert_allclose(shapely.distance(pts_m, foot), at.access_m, rtol=0, atol=1e-4)
    assert np.all((at.offset_m >= 0) & (at.offset_m <= length))


@dataclass
class Reference:
    graph: nx.Graph
    sources: EdgePositions
    node_ids: np.ndarray
    by_site: np.ndarray  # metres from each site (row) to each node (column)
    multi: dict[int, float]
    multi_site: dict[int, int]


def reference_search(district: geo.District, sources: EdgePositions) -> Reference:
    """Shortest walks with networkx on a graph built straight from ``district.edges``."""
    G = nx.Graph()
    for u, v, length in zip(district.edges["u"], district.edges["v"], district.edges["length"],
                            strict=True):
        if u == v:
            continue
        if not G.has_edge(u, v) or G[u][v]["weight"] > length:
            G.add_edge(int(u), int(v), weight=float(length))
    lengths = district.edges["length"].to_numpy()
    us, vs = district.edges["u"].to_numpy(), district.edges["v"].to_numpy()
    site_nodes = []
    for i, (e, off, acc) in enumerate(
        zip(sources.edge, sources.offset_m, sources.access_m, strict=True)
    ):
        site = ("site", i)
        site_nodes.append(site)
        for end, w in ((int(us[e]), acc + off), (int(vs[e]), acc + lengths[e] - off)):
            if not G.has_edge(site, end) or G[site][end]["weight"] > w:
                G.add_edge(site, end, weight=float(w))
    multi = nx.multi_source_dijkstra_path_length(G, site_nodes)
    _, paths = nx.multi_source_dijkstra(G, site_nodes)
    node_ids = district.nodes.index.to_numpy()
    by_site = np.full((len(site_nodes), len(node_ids)), np.inf)
    for i, site in enumerate(site_nodes):
        d = nx.single_source_dijkstra_path_length(G, site)
        by_site[i] = [d.get(n, np.inf) for n in node_ids]
    return Reference(
        graph=G,
        sources=sources,
        node_ids=node_ids,
        by_site=by_site,
        multi={n: multi[n] for n in node_ids},
        multi_site={n: paths[n][0][1] for n in node_ids},
    )


def cell_reference(district: geo.District, ref: Reference, at: EdgePositions) -> np.ndarray:
    """Metres from every site (column) to every cell (row): either end, or along a shared edge."""
    pos = pd.Index(ref.node_ids)
    lengths = district.edges["length"].to_numpy()
    u = pos.get_indexer(district.edges["u"].to_numpy()[at.edge])
    v = pos.get_indexer(district.edges["v"].to_numpy()[at.edge])
    via_u = ref.by_site[:, u].T + at.offset_m[:, None]
    via_v = ref.by_site[:, v].T + (lengths[at.edge] - at.offset_m)[:, None]
    best = np.minimum(via_u, via_v)
    s = ref.sources
    same_edge = at.edge[:, None] == s.edge[None, :]
    direct = np.abs(at.offset_m[:, None] - s.offset_m[None, :]) + s.access_m[None, :]
    best = np.where(same_edge, np.minimum(best, direct), best)
    return best + at.access_m[:, None]


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def network(district: geo.District) -> WalkNetwork:
    return district.network


@pytest.fixture(scope="module")
def edges_m(district: geo.District) -> np.ndarray:
    return _metric_edges(district)


@pytest.fixture(scope="module")
def cov(district: geo.District, network: WalkNetwork) -> geo.Coverage:
    return coverage(network, district.positions, district.cells,
                    inside=district.nodes["inside"].to_numpy())


@pytest.fixture(scope="module")
def sources(district: geo.District, network: WalkNetwork) -> EdgePositions:
    geom = district.positions.geometry
    return network.attach(geom.x.to_numpy(), geom.y.to_numpy())


@pytest.fixture(scope="module")
def ref(district: geo.District, sources: EdgePositions) -> Reference:
    return reference_search(district, sources)


# ---------------------------------------------------------------------------------- tests


def test_district_has_positions_to_check(district: geo.District) -> None:
    assert len(district.positions) >= 20
    assert len(district.cells) >= 100
    assert len(district.nodes) >= 1000


def test_attach_positions_is_nearest_edge(
    district: geo.District, edges_m: np.ndarray, sources: EdgePositions
) -> None:
    geom = district.positions.geometry
    check_attach(district, edges_m, _metric_points(district, geom.x, geom.y), sources)


def test_attach_cells_is_nearest_edge(
    district: geo.District, network: WalkNetwork, edges_m: np.ndarray
) -> None:
    lon, lat = district.cells["lon"].to_numpy(), district.cells["lat"].to_numpy()
    check_attach(district, edges_m, _metric_points(district, lon, lat), network.attach(lon, lat))


def test_attach_random_points_is_exact(
    district: geo.District, network: WalkNetwork, edges_m: np.ndarray
) -> None:
    """Points anywhere (also hundreds of metres from a street) attach to an exactly nearest edge."""
    rng = np.random.default_rng(3)
    x0, y0, x1, y1 = shapely.total_bounds(edges_m)
    pad = 2000.0
    pts_m = shapely.points(rng.uniform(x0 - pad, x1 + pad, 4000),
                           rng.uniform(y0 - pad, y1 + pad, 4000))
    ll = gpd.GeoSeries(pts_m, crs=district.meta["crs_metric"]).to_crs("EPSG:4326")
    at = network.attach(ll.x.to_numpy(), ll.y.to_numpy())
    raised = district.edges["elevated"].to_numpy(dtype=bool)
    (_, _), anywhere = shapely.STRtree(edges_m).query_nearest(
        pts_m, return_distance=True, all_matches=False)
    (_, _), ground = shapely.STRtree(edges_m[~raised]).query_nearest(
        pts_m, return_distance=True, all_matches=False)
    # A bridge or tunnel only when no ground street is within reach.
    nearest = np.where(ground <= MAX_ACCESS_M, ground, anywhere)
    assert (ground > anywhere + 1).sum() > 10  # points the rule moves
    assert not raised[at.edge[ground <= MAX_ACCESS_M]].any()
    np.testing.assert_allclose(at.access_m, nearest, rtol=0, atol=1e-6)
    np.testing.assert_allclose(shapely.distance(pts_m, edges_m[at.edge]), nearest,
                               rtol=0, atol=1e-6)


def test_attach_far_positions_with_limit(network: WalkNetwork, district: geo.District) -> None:
    lon, lat = district.nodes["x"].to_numpy(), district.nodes["y"].to_numpy()
    far_lon, far_lat = np.array([lon.max() + 0.2]), np.array([lat.max()])
    assert network.attach(far_lon, far_lat).access_m[0] > 10_000
    with pytest.raises(geo.OutOfAreaError, match="距最近的步行道路"):
        network.attach(far_lon, far_lat, max_access_m=500)


def test_node_walk_matches_networkx(cov: geo.Coverage, ref: Reference) -> None:
    expected = np.array([ref.multi[n] for n in ref.node_ids])
    got = cov.nodes.loc[ref.node_ids, "walk_m"].to_numpy()
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_M)
    # The per-site searches agree with the multi-source one.
    np.testing.assert_allclose(ref.by_site.min(axis=0), expected, rtol=0, atol=TOL_M)
    # Minutes at the default pace, on a sample of nodes.
    sample = np.random.default_rng(50).choice(len(ref.node_ids), size=50, replace=False)
    np.testing.assert_allclose(
        cov.nodes["walk_minutes"].to_numpy()[sample],
        expected[sample] / (1000.0 / 15.0),
        rtol=1e-12,
    )


def test_node_nearest_site_matches_networkx(
    cov: geo.Coverage, ref: Reference, district: geo.District
) -> None:
    site_ids = district.positions["site_id"].to_numpy()
    got = cov.nodes.loc[ref.node_ids, "nearest_site"].to_numpy()
    col = {s: i for i, s in enumerate(site_ids)}
    got_i = np.array([col[s] for s in got])
    best = ref.by_site.min(axis=0)
    # Whatever site we name is a nearest one...
    np.testing.assert_allclose(ref.by_site[got_i, np.arange(len(got_i))], best, rtol=0, atol=TOL_M)
    # ...and where the nearest is unique it is networkx's.
    second = np.sort(ref.by_site, axis=0)[1]
    unique = second > best + 1e-3
    assert unique.mean() > 0.9
    nx_site = np.array([ref.multi_site[n] for n in ref.node_ids])
    assert (got_i[unique] == nx_site[unique]).all()
    assert (got_i[unique] == ref.by_site.argmin(axis=0)[unique]).all()


def test_node_covered_flags(cov: geo.Coverage, ref: Reference, district: geo.District) -> None:
    walk = np.array([ref.multi[n] for n in ref.node_ids])
    clear = np.abs(walk - 1000.0) > 1e-3
    covered = cov.nodes.loc[ref.node_ids, "covered"].to_numpy()
    assert (covered[clear] == (walk[clear] <= 1000.0)).all()
    assert 0 < covered.mean() < 1
    inside = district.nodes.loc[ref.node_ids, "inside"].to_numpy()
    assert cov.covered_node_share() == pytest.approx(covered[inside].mean())
    assert cov.limit_m == pytest.approx(1000.0)


def test_cell_centre_walk_matches_networkx(
    ref: Reference, district: geo.District, network: WalkNetwork
) -> None:
    """The rule before cells had several points: each centre on its nearest street only."""
    rng = np.random.default_rng(7)
    cells = district.cells.iloc[np.sort(rng.choice(len(district.cells), 120, replace=False))]
    centres = CellPoints.one_per_cell(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    cov = coverage(network, district.positions, cells, cell_points=centres, snap_m=0)
    at = network.attach(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    by_site = cell_reference(district, ref, at)
    best = by_site.min(axis=1)
    got = cov.cells.loc[cells["cell_id"]]
    np.testing.assert_allclose(got["walk_m"].to_numpy(), best, rtol=0, atol=TOL_M)
    np.testing.assert_allclose(got["access_m"].to_numpy(), at.access_m, rtol=0, atol=TOL_M)
    np.testing.assert_allclose(got["walk_minutes"].to_numpy(), best / (1000.0 / 15.0), rtol=1e-12)
    site_ids = list(district.positions["site_id"])
    got_i = np.array([site_ids.index(s) for s in got["nearest_site"]])
    np.testing.assert_allclose(by_site[np.arange(len(got_i)), got_i], best, rtol=0, atol=TOL_M)
    second = np.sort(by_site, axis=1)[:, 1]
    unique = second > best + 1e-3
    assert (got_i[unique] == by_site.argmin(axis=1)[unique]).all()
    assert cov.covered_cell_share() == pytest.approx((cov.cells["walk_m"] <= 1000.0).mean())


def test_cell_on_a_site_edge_walks_along_it(
    ref: Reference, district: geo.District, network: WalkNetwork, sources: EdgePositions
) -> None:
    """A cell on the same street as a site walks straight along it, not round via the ends."""
    lengths = district.edges["length"].to_numpy()
    e = int(sources.edge[np.argmax(lengths[sources.edge])])  # the site on the longest edge
    s = int(np.flatnonzero(sources.edge == e)[0])
    geom = _metric_edges(district)[e]
    off = (sources.offset_m[s] + lengths[e] / 2) % lengths[e]
    pt = shapely.line_interpolate_point(geom, off / lengths[e], normalized=True)
    lonlat = gpd.GeoSeries([pt], crs=district.meta["crs_metric"]).to_crs("EPSG:4326")
    cells = pd.DataFrame({"cell_id": ["x"], "lon": lonlat.x, "lat": lonlat.y})
    one = district.positions.iloc[[s]]
    got = coverage(network, one, cells, snap_m=0).cells.loc["x"]
    at = network.attach(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    assert at.edge[0] == e
    assert at.access_m[0] < 1e-3
    one_ref = reference_search(district, network.attach(
        one.geometry.x.to_numpy(), one.geometry.y.to_numpy()))
    expected = cell_reference(district, one_ref, at)[0, 0]
    assert expected == pytest.approx(abs(off - sources.offset_m[s]) + sources.access_m[s], abs=1e-3)
    pos = pd.Index(one_ref.node_ids)
    u, v = pos.get_indexer(district.edges[["u", "v"]].to_numpy()[e])
    via_ends = min(one_ref.by_site[0, u] + off, one_ref.by_site[0, v] + lengths[e] - off)
    assert expected < via_ends - 50  # the direct walk is the point of this test
    assert got["walk_m"] == pytest.approx(expected, abs=TOL_M)
    assert got["nearest_site"] == one["site_id"].iloc[0]


def test_site_exactly_at_a_node(network: WalkNetwork, district: geo.District) -> None:
    node = district.nodes.index[len(district.nodes) // 2]
    lon = district.nodes.loc[[node], "x"].to_numpy()
    lat = district.nodes.loc[[node], "y"].to_numpy()
    walk = walk_minutes(network, lon, lat)
    assert walk.loc[node, "walk_m"] == pytest.approx(0.0, abs=1e-3)
    assert (walk["nearest"] == 0).all()
    e = district.edges
    out = pd.concat([
        e.loc[e["u"] == node, ["v", "length"]].set_axis(["nb", "length"], axis=1),
        e.loc[e["v"] == node, ["u", "length"]].set_axis(["nb", "length"], axis=1),
    ])
    assert len(out) > 0
    for nb, length in out.itertuples(index=False):
        assert walk.loc[nb, "walk_m"] <= length + 1e-3


def test_no_sites_means_unreachable(network: WalkNetwork) -> None:
    walk = walk_minutes(network, np.array([]), np.array([]))
    assert len(walk) == network.n_nodes
    assert np.isinf(walk["walk_m"]).all()
    assert (walk["nearest"] == -1).all()


def test_repeated_walk_minutes_on_one_registry(network: WalkNetwork,
                                               district: geo.District) -> None:
    """Snapping and source graph kept: the frame pandas would build from a fresh search."""
    pos = district.positions
    geom = pos.geometry
    nodes = geo.node_walk(network, network.attach(geom.x.to_numpy(), geom.y.to_numpy()))
    pace = 1000.0 / 15.0
    expected = pd.DataFrame(
        {"walk_m": nodes.walk_m, "walk_minutes": nodes.walk_m / pace, "nearest": nodes.source},
        index=pd.Index(network.node_ids, name="osmid"),
    )
    assert np.isfinite(expected["walk_m"]).all()
    first = position_walk_minutes(network, pos)
    pd.testing.assert_frame_equal(first, expected, check_exact=True)
    pd.testing.assert_frame_equal(position_walk_minutes(network, pos.copy()), expected,
                                  check_exact=True)
    # Each call's frame is its own: changing one leaves the next calls alone.
    first.loc[first.index[:10], "walk_m"] = -1.0
    first.columns.name = "changed"
    again = position_walk_minutes(network, pos)
    pd.testing.assert_frame_equal(again, expected, check_exact=True)
    assert again.columns.name is None


def test_repeated_coverage_on_one_registry(network: WalkNetwork, district: geo.District,
                                           cov: geo.Coverage) -> None:
    inside = district.nodes["inside"].to_numpy()
    again = coverage(network, district.positions, district.cells, inside=inside)
    for got, want in ((again.nodes, cov.nodes), (again.cells, cov.cells),
                      (again.points, cov.points)):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    # Site ids typed as pandas types them; the inside flags are the frame's own copy.
    ids = pd.Series(district.positions["site_id"].to_numpy(dtype=object))
    assert again.nodes["nearest_site"].dtype == ids.dtype
    again.nodes.loc[again.nodes.index[0], "inside"] = not inside[0]
    assert district.nodes["inside"].to_numpy()[0] == inside[0]
    pd.testing.assert_frame_equal(
        coverage(network, district.positions, district.cells, inside=inside).nodes, cov.nodes,
        check_exact=True)


# ----------------------------------------------------------------------------------- pace


def test_walk_minutes_scales_with_pace(network: WalkNetwork, district: geo.District) -> None:
    geom = district.positions.geometry
    lon, lat = geom.x.to_numpy(), geom.y.to_numpy()
    default = walk_minutes(network, lon, lat)
    slow = walk_minutes(network, lon, lat, walk_m_per_min=800.0 / 15.0)
    fast = walk_minutes(network, lon, lat, walk_m_per_min=100.0)
    np.testing.assert_array_equal(default["walk_m"], slow["walk_m"])
    np.testing.assert_array_equal(default["nearest"], fast["nearest"])
    np.testing.assert_allclose(default["walk_minutes"] * (1000.0 / 15.0), default["walk_m"])
    np.testing.assert_allclose(slow["walk_minutes"] * (800.0 / 15.0), slow["walk_m"])
    np.testing.assert_allclose(fast["walk_minutes"] * 100.0, fast["walk_m"])
    np.testing.assert_allclose(slow["walk_minutes"] / default["walk_minutes"], 1000.0 / 800.0)


def test_faster_pace_covers_at_least_as_much(
    network: WalkNetwork, district: geo.District, cov: geo.Coverage
) -> None:
    inside = district.nodes["inside"].to_numpy()
    slow = coverage(network, district.positions, district.cells, minutes=15,
                    walk_m_per_min=800.0 / 15.0, inside=inside)
    assert slow.limit_m == pytest.approx(800.0)
    assert cov.covered_node_share() >= slow.covered_node_share()
    assert cov.covered_cell_share() >= slow.covered_cell_share()
    assert (cov.nodes["covered"] | ~slow.nodes["covered"]).all()  # slow-covered ⊆ covered
    assert (cov.cells["covered"] | ~slow.cells["covered"]).all()
    np.testing.assert_allclose(slow.nodes["walk_m"], cov.nodes["walk_m"])
    # 20 minutes at the slow pace is 1067 m: more than the default 1000 m covers.
    longer = coverage(network, district.positions, district.cells, minutes=20,
                      walk_m_per_min=800.0 / 15.0, inside=inside)
    assert longer.covered_node_share() >= cov.covered_node_share()


@pytest.mark.parametrize(("minutes", "pace"), [(0, 60.0), (15, 0.0), (-1, 60.0)])
def test_coverage_rejects_non_positive(
    network: WalkNetwork, district: geo.District, minutes: float, pace: float
) -> None:
    with pytest.raises(ValueError, match="positive"):
        coverage(network, district.positions, district.cells, minutes=minutes, walk_m_per_min=pace)
