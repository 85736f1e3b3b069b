"""Points attach to ground-level streets, not to bridges or tunnels beside them.

Real ways of the bundled extracts (Taiyuan's GDAL lines layer, the Haidian and Longgang OSM XML).
Which ways are bridges or tunnels is read here from the files' tags with a hand-written rule, and
every expected attachment is found by brute force (shapely distances from each point to every
edge), not with the network's own street index.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmnx as ox
import pytest
import shapely

import data
import geo
from geo._errors import OutOfAreaError
from geo.network import (
    DEFAULT_SNAP_M,
    MAX_ACCESS_M,
    WalkNetwork,
    graph_from_lines,
    graph_from_osm_xml,
    is_elevated,
    parse_other_tags,
    simplify_walk_graph,
    walk_network,
    walkable_lines,
)

LONGGANG_OSM = (Path(data.__file__).resolve().parents[2]
                / "shared/data/osm/shenzhen_longgang/longgang_2019.osm")
# The Fen river greenway beside 小店区 (Taiyuan): cycle paths with foot=yes, bridges at layer=1.
TAIYUAN_BOX = (112.52, 37.80, 112.56, 37.85)
BESIDE_M = 10.0  # how far beside a bridge's middle the test points stand
TOL_M = 1e-6


def raised_by_hand(tags: dict[str, str]) -> bool:
    """Tell a bridge or tunnel by OSM practice, without geo.network's helpers.

    bridge=*, tunnel=* (a building passage is at street level) and a covered way off layer 0.
    """
    bridge = tags.get("bridge", "no")
    tunnel = tags.get("tunnel", "no")
    covered = tags.get("covered", "no")
    layer = tags.get("layer", "0")
    return (
        bridge != "no"
        or tunnel not in ("no", "building_passage")
        or (covered != "no" and layer not in ("0", ""))
    )


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "footway"}, False),
        ({"highway": "footway", "bridge": "yes", "layer": "1"}, True),
        ({"highway": "primary", "bridge": "viaduct", "layer": "2"}, True),
        ({"highway": "footway", "bridge": "yes"}, True),  # no layer: a bridge still
        ({"highway": "footway", "bridge": "no", "layer": "1"}, False),
        ({"highway": "footway", "layer": "1"}, False),  # layer alone only orders drawing
        ({"highway": "footway", "layer": "-1"}, False),
        ({"highway": "footway", "tunnel": "yes", "layer": "-1"}, True),
        ({"highway": "footway", "tunnel": "no", "layer": "-1"}, False),
        ({"highway": "footway", "tunnel": "building_passage"}, False),
        ({"highway": "footway", "covered": "yes"}, False),  # an arcade at street level
        ({"highway": "footway", "covered": "yes", "layer": "1"}, True),
        ({"highway": "footway", "covered": "no", "layer": "1"}, False),
        ({"highway": "footway", "bridge": "Yes"}, True),
        ({"highway": "footway", "bridge": ["no", "yes"]}, True),  # osmnx merged two ways
        ({"highway": "footway", "bridge": ["no", np.nan]}, False),
        ({"highway": "footway", "bridge": float("nan")}, False),
    ],
)
def test_is_elevated(tags: dict[str, object], expected: bool) -> None:
    assert is_elevated(tags) is expected


# ------------------------------------------------------------------ networks from real ways


@dataclass
class Case:
    net: WalkNetwork
    raised: np.ndarray  # per edge, by hand from the file's tags
    ways: list[list[int]]  # per edge, its OSM ways
    way_raised: dict[int, bool]


def _edge_ways(net: WalkNetwork) -> list[list[int]]:
    return [[int(w) for w in str(o).split(";") if w] for o in net.edges["osmid"]]


def _case(net: WalkNetwork, way_raised: dict[int, bool]) -> Case:
    ways = _edge_ways(net)
    raised = np.array([any(way_raised.get(w, False) for w in ws) for ws in ways], dtype=bool)
    return Case(net, raised, ways, way_raised)


def _taiyuan_cut() -> tuple[gpd.GeoDataFrame, dict[int, bool]]:
    lines = data.read_taiyuan_lines()
    lines = lines[lines.intersects(shapely.box(*TAIYUAN_BOX))]
    tags = {
        int(i): raised_by_hand(parse_other_tags(t))
        for i, t in zip(lines["osm_id"], lines["other_tags"], strict=True)
    }
    return walkable_lines(lines), tags


def _xml_raised(path: Path) -> dict[int, bool]:
    out = {}
    for way in ET.parse(path).getroot().iter("way"):
        out[int(way.get("id", "0"))] = raised_by_hand(
            {t.get("k", ""): t.get("v", "") for t in way.iter("tag")}
        )
    return out


@pytest.fixture(scope="module", params=["taiyuan", "haidian", "longgang"])
def case(request: pytest.FixtureRequest) -> Case:
    if request.param == "taiyuan":
        lines, tags = _taiyuan_cut()
        return _case(walk_network(simplify_walk_graph(graph_from_lines(lines))), tags)
    path = Path(data.loaders.HAIDIAN_OSM) if request.param == "haidian" else LONGGANG_OSM
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return _case(walk_network(simplify_walk_graph(graph_from_osm_xml(path))), _xml_raised(path))


def test_edges_say_whether_they_are_bridges_or_tunnels(case: Case) -> None:
    edges = case.net.edges
    assert edges["elevated"].dtype == bool
    assert case.raised.sum() >= 10, "each extract maps bridges or tunnels"
    assert (edges["elevated"].to_numpy() == case.raised).all()
    # Simplification stops at a bridge's ends: no edge is partly on a bridge.
    for ws in case.ways:
        flags = {case.way_raised.get(w, False) for w in ws}
        assert len(flags) == 1, ws


def _points_beside_raised(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points BESIDE_M either side of each raised edge's middle: metric points, lon, lat."""
    geoms = case.net.edges.geometry.to_crs(case.net.crs_metric).to_numpy()[case.raised]
    half = shapely.length(geoms) / 2
    a = shapely.line_interpolate_point(geoms, np.maximum(half - 0.5, 0))
    b = shapely.line_interpolate_point(geoms, half + 0.5)
    mid = shapely.line_interpolate_point(geoms, half)
    d = shapely.get_coordinates(b) - shapely.get_coordinates(a)
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.hypot(d[:, 0], d[:, 1])[:, None]
    xy = np.concatenate([shapely.get_coordinates(mid) + BESIDE_M * normal,
                         shapely.get_coordinates(mid) - BESIDE_M * normal])
    pts = shapely.points(xy)
    wgs = gpd.GeoSeries(pts, crs=case.net.crs_metric).to_crs("EPSG:4326")
    return pts, wgs.x.to_numpy(), wgs.y.to_numpy()


def _distances(case: Case, pts: np.ndarray) -> np.ndarray:
    geoms = case.net.edges.geometry.to_crs(case.net.crs_metric).to_numpy()
    return shapely.distance(pts[:, None], geoms[None, :])


def test_a_point_beside_a_bridge_attaches_to_a_ground_street(case: Case) -> None:
    pts, lon, lat = _points_beside_raised(case)
    dist = _distances(case, pts)
    ground = np.where(case.raised[None, :], np.inf, dist).min(axis=1)
    lifted = np.where(case.raised[None, :], dist, np.inf).min(axis=1)
    assert (ground <= MAX_ACCESS_M).all()
    # The case of the issue: a bridge is the nearest street by far, a ground street farther.
    assert (lifted < ground - 5).sum() >= 3

    at = case.net.attach(lon, lat)
    assert not case.raised[at.edge].any()
    np.testing.assert_allclose(at.access_m, ground, atol=TOL_M)
    np.testing.assert_allclose(dist[np.arange(len(pts)), at.edge], at.access_m, atol=TOL_M)


def test_attach_near_offers_only_ground_streets_beside_a_bridge(case: Case) -> None:
    pts, lon, lat = _points_beside_raised(case)
    dist = _distances(case, pts)
    ground = np.where(case.raised[None, :], np.inf, dist)
    nearest = ground.min(axis=1)
    at, owner = case.net.attach_near(lon, lat)
    assert not case.raised[at.edge].any()
    for i in range(len(pts)):
        got = set(at.edge[owner == i].tolist())
        assert set(np.flatnonzero(ground[i] <= nearest[i] + DEFAULT_SNAP_M - TOL_M)) <= got
        assert got <= set(np.flatnonzero(ground[i] <= nearest[i] + DEFAULT_SNAP_M + TOL_M))
    np.testing.assert_allclose(at.access_m, dist[owner, at.edge], atol=TOL_M)


def test_with_no_ground_street_within_reach_a_point_takes_the_bridge(case: Case) -> None:
    pts, lon, lat = _points_beside_raised(case)
    dist = _distances(case, pts)
    ground = np.where(case.raised[None, :], np.inf, dist).min(axis=1)
    lifted = np.where(case.raised[None, :], dist, np.inf).min(axis=1)
    reach = BESIDE_M + 0.5
    expect_lifted = (ground > reach) & (lifted < ground)
    assert expect_lifted.sum() >= 3
    assert (np.minimum(ground, lifted) <= reach).all()  # so nothing is refused

    at = case.net.attach(lon, lat, max_access_m=reach)
    assert (case.raised[at.edge] == expect_lifted).all()
    np.testing.assert_allclose(at.access_m, np.where(expect_lifted, lifted, ground), atol=TOL_M)

    # attach_near: a point that had to take a bridge may start on any street within the detour.
    near, owner = case.net.attach_near(lon, lat, max_access_m=reach)
    for i in np.flatnonzero(expect_lifted):
        got = set(near.edge[owner == i].tolist())
        assert set(np.flatnonzero(dist[i] <= lifted[i] + DEFAULT_SNAP_M - TOL_M)) <= got
        assert got <= set(np.flatnonzero(dist[i] <= lifted[i] + DEFAULT_SNAP_M + TOL_M))

    # Farther than the reach from every street, bridges included: refused as before.
    far = np.flatnonzero(np.minimum(ground, lifted) > 3)[:1]
    assert len(far)
    with pytest.raises(OutOfAreaError):
        case.net.attach(lon[far], lat[far], max_access_m=2.5)


def test_a_network_of_bridges_only_still_takes_every_point() -> None:
    lines, tags = _taiyuan_cut()
    bridges = lines[lines["osm_id"].astype("int64").map(tags).to_numpy(dtype=bool)]
    net = walk_network(simplify_walk_graph(graph_from_lines(bridges)))
    case = _case(net, tags)
    assert case.raised.all()
    assert net.elevated.all()
    pts, lon, lat = _points_beside_raised(case)
    dist = _distances(case, pts)
    at = net.attach(lon, lat)
    np.testing.assert_allclose(at.access_m, dist.min(axis=1), atol=TOL_M)
    near, owner = net.attach_near(lon, lat)
    assert set(owner.tolist()) == set(range(len(pts)))
    for i in range(len(pts)):
        got = set(near.edge[owner == i].tolist())
        assert got == set(np.flatnonzero(dist[i] <= dist[i].min() + DEFAULT_SNAP_M - TOL_M)) | (
            got & set(np.flatnonzero(dist[i] <= dist[i].min() + DEFAULT_SNAP_M + TOL_M))
        )


def test_edges_merged_into_lists_count_as_raised_if_any_way_is() -> None:
    lines, tags = _taiyuan_cut()
    G = ox.truncate.largest_component(graph_from_lines(lines), strongly=False)
    net = walk_network(ox.simplify_graph(G))  # osmnx's default: merges across a bridge's ends
    case = _case(net, tags)
    mixed = [len({tags.get(w, False) for w in ws}) > 1 for ws in case.ways]
    assert sum(mixed) >= 5  # the lists this test is about
    assert net.edges["elevated"].dtype == bool
    assert (net.elevated == case.raised).all()
    # The flag read back as text (a GraphML round trip, say) means the same.
    text = net.edges.assign(elevated=net.edges["elevated"].map(str))
    assert (WalkNetwork(nodes=net.nodes, edges=text, crs_metric=net.crs_metric).elevated
            == case.raised).all()


def test_the_cached_district_keeps_the_flag(
    built_district: geo.District, district: geo.District
) -> None:
    built, loaded = built_district.edges["elevated"], district.edges["elevated"]
    assert loaded.dtype == bool
    assert loaded.sum() > 100  # the Fen river bridges and the elevated roads of 小店区
    assert (loaded.to_numpy() == built.to_numpy()).all()
    assert (district.network.elevated == loaded.to_numpy()).all()
