"""Service areas on real 小店区, checked against reach computed independently on street samples."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

import geo
from geo.profiles import network_for_profile, profile
from geo.service_areas import DEFAULT_STREET_WIDTH_M, covered_area, service_areas
from geo.walk import node_walk

LIMIT_M = 1000.0  # 15 minutes at the standard pace
WIDTH = DEFAULT_STREET_WIDTH_M
STEP_M = 5.0
TOL_M = 1e-3


@pytest.fixture(scope="module")
def sites(district: geo.District) -> gpd.GeoDataFrame:
    pos = district.positions
    pick = [pos.index[pos["level"] == lv][0] for lv in ("center", "township", "community", "site")]
    pick += list(pos.index[pos["level"] == "site"][10:13])
    return pos.loc[pick].reset_index(drop=True)


@pytest.fixture(scope="module")
def areas(district: geo.District, sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return service_areas(district.network, sites)


def _street_samples(district: geo.District) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ~5 m along every edge: (edge index, metres from u, metric point)."""
    crs = district.meta["crs_metric"]
    edges = district.edges
    geoms = edges.geometry.to_crs(crs).to_numpy()
    nodes = district.nodes.geometry.to_crs(crs)
    u_pt = nodes.loc[edges["u"]].to_numpy()
    v_pt = nodes.loc[edges["v"]].to_numpy()
    first = shapely.get_point(geoms, 0)
    geoms = np.where(shapely.distance(first, v_pt) < shapely.distance(first, u_pt),
                     shapely.reverse(geoms), geoms)
    length = edges["length"].to_numpy()
    n = np.ceil(length / STEP_M).astype(int) + 1
    edge = np.repeat(np.arange(len(edges)), n)
    frac = np.concatenate([np.linspace(0.0, 1.0, k) for k in n])
    pts = shapely.line_interpolate_point(geoms[edge], frac, normalized=True)
    return edge, frac * length[edge], pts


def test_areas_follow_reach(district: geo.District, sites: gpd.GeoDataFrame,
                            areas: gpd.GeoDataFrame) -> None:
    net = district.network
    crs = district.meta["crs_metric"]
    polys = areas.geometry.to_crs(crs).to_numpy()
    node_pts = district.nodes.geometry.to_crs(crs).loc[net.node_ids].to_numpy()
    edge, along, samples = _street_samples(district)
    length = net.length[edge]
    for i in range(len(sites)):
        src = net.attach(sites.geometry.x.to_numpy()[i:i + 1], sites.geometry.y.to_numpy()[i:i + 1])
        walk = node_walk(net, src).walk_m
        poly = polys[i]
        assert areas["site_id"].iloc[i] == sites["site_id"].iloc[i]
        # Every node reachable in time is inside.
        reach = walk <= LIMIT_M
        assert reach.sum() > 5
        assert (shapely.distance(poly, node_pts[reach]) < TOL_M).all()
        # Every street point reachable in time is inside (computed here from node walks).
        s_walk = np.minimum(walk[net.u[edge]] + along, walk[net.v[edge]] + length - along)
        own = edge == src.edge[0]
        s_walk[own] = np.minimum(s_walk[own],
                                 src.access_m[0] + np.abs(along[own] - src.offset_m[0]))
        reached = s_walk <= LIMIT_M - TOL_M
        assert (shapely.distance(poly, samples[reached]) < TOL_M).all()
        # Nothing else: a node inside must be within the street width of a reached street
        # point, so a node walked to in more than limit + width lies inside only when it stands
        # beside a reached street (across a block), never far from one.
        tree = cKDTree(shapely.get_coordinates(samples[reached]))
        inside = shapely.intersects(poly, node_pts)
        near = tree.query(shapely.get_coordinates(node_pts[inside]))[0]
        assert (near <= WIDTH + STEP_M).all()
        far = (walk > LIMIT_M + WIDTH) & ~inside
        assert far.sum() > 0
        far_from_streets = tree.query(shapely.get_coordinates(node_pts))[0] > WIDTH + STEP_M
        assert not (far_from_streets & (walk > LIMIT_M + WIDTH) & inside).any()
        # Not a hull: well below the buffered hull of what it reaches.
        hull = shapely.MultiPoint(shapely.get_coordinates(samples[reached])).convex_hull
        assert poly.area < 0.8 * hull.buffer(WIDTH).area


def test_area_fields_and_union(areas: gpd.GeoDataFrame, sites: gpd.GeoDataFrame) -> None:
    assert list(areas.columns) == ["site_id", "name", "level", "minutes", "walk_m_per_min",
                                   "reach_m", "area_km2", "geometry"]
    assert areas.crs.to_epsg() == 4326
    assert (areas["level"] == sites["level"]).all()
    np.testing.assert_allclose(areas["reach_m"], LIMIT_M)
    assert (areas["area_km2"] > 0.05).all() and (areas["area_km2"] < 3.2).all()
    assert (areas.geom_type.isin(["Polygon", "MultiPolygon"])).all()
    union = covered_area(areas)
    assert union["level"].tolist() == ["all"] and union["positions"].iloc[0] == len(areas)
    total = union["area_km2"].iloc[0]
    assert areas["area_km2"].max() <= total + 1e-6 <= areas["area_km2"].sum() + 1e-6
    by_level = covered_area(areas, by_level=True)
    assert set(by_level["level"]) == set(sites["level"])
    assert by_level["positions"].sum() == len(areas)


def test_slower_profiles_reach_less(district: geo.District, sites: gpd.GeoDataFrame,
                                    areas: gpd.GeoDataFrame) -> None:
    old = service_areas(district.network, sites,
                        walk_m_per_min=profile("elderly").walk_m_per_min)
    wheel = service_areas(network_for_profile(district, "wheelchair"), sites,
                          walk_m_per_min=profile("wheelchair").walk_m_per_min)
    assert (old["area_km2"] < areas["area_km2"]).all()
    assert (wheel["area_km2"] < old["area_km2"]).all()
    crs = district.meta["crs_metric"]
    # The slower area lies within the standard one (up to buffer rounding).
    std_m = areas.geometry.to_crs(crs).to_numpy()
    old_m = old.geometry.to_crs(crs).to_numpy()
    assert (shapely.area(shapely.difference(old_m, std_m)) < 1e-3 * shapely.area(old_m)).all()


def test_bad_arguments(district: geo.District, sites: gpd.GeoDataFrame) -> None:
    with pytest.raises(ValueError, match="positive"):
        service_areas(district.network, sites, minutes=0)
    empty = service_areas(district.network, sites.iloc[:0])
    assert len(empty) == 0 and empty.crs.to_epsg() == 4326
