"""A cell's minutes stand for where its residents are: points, snapping, medians, checked.

Every check here recomputes on the real 小店区 data by other means: brute-force distances to
every street for the snapping, networkx shortest paths for the walks, plain sorting for the
weighted median, and :func:`geo.demand.housing_weights` for the residents' weights.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

import geo
from geo.coverage import access_stats, cell_points_of, coverage
from geo.demand import (
    DEFAULT_FLOOR_SHARE,
    building_factor,
    cell_demand,
    housing_weights,
    osm_housing,
)
from geo.grid import (
    DEFAULT_H3_RESOLUTION,
    CellPoints,
    cell_samples,
    lattice_samples,
    resident_points,
)
from geo.network import DEFAULT_SNAP_M, WalkNetwork
from tests.geo.test_coverage import Reference, _metric_edges, attachable, reference_search

TOL_M = 1e-6


@pytest.fixture(scope="module")
def network(district: geo.District) -> WalkNetwork:
    return district.network


@pytest.fixture(scope="module")
def edges_m(district: geo.District) -> np.ndarray:
    return _metric_edges(district)


@pytest.fixture(scope="module")
def housing(district: geo.District) -> CellPoints:
    return resident_points(district)


@pytest.fixture(scope="module")
def ref(district: geo.District, network: WalkNetwork) -> Reference:
    geom = district.positions.geometry
    return reference_search(district, network.attach(geom.x.to_numpy(), geom.y.to_numpy()))


@pytest.fixture(scope="module")
def cov(district: geo.District, network: WalkNetwork, housing: CellPoints) -> geo.Coverage:
    return coverage(network, district.positions, district.cells, cell_points=housing,
                    inside=district.nodes["inside"].to_numpy())


def _metric(district: geo.District, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    return pts.to_crs(district.meta["crs_metric"]).to_numpy()


def brute_attach_near(district: geo.District, edges_m: np.ndarray, pts_m: np.ndarray,
                      snap_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (point, edge) within ``snap_m`` beyond the point's nearest edge, by brute force.

    Bridges and tunnels count only for a point with no ground street within reach.
    """
    dist = attachable(district, shapely.distance(pts_m[:, None], edges_m[None, :]))
    nearest = dist.min(axis=1)
    p, e = np.nonzero(dist <= nearest[:, None] + snap_m)
    length = district.edges["length"].to_numpy()[e]
    offset = shapely.line_locate_point(edges_m[e], pts_m[p], normalized=True) * length
    return p, e, offset, dist[p, e]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> tuple[float, int]:
    """The smallest value at least half of the weight reaches, and which entry holds it."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = int(np.argmax(cum >= 0.5 * weights.sum() * (1 - 1e-9)))
    return float(values[order][i]), int(order[i])


# ------------------------------------------------------------------------------ the points


def test_fixed_samples_are_seven_per_hexagon(district: geo.District) -> None:
    crs = district.meta["crs_metric"]
    pts = cell_samples(district.cells, crs=crs)
    assert pts.n_cells == len(district.cells)
    assert (np.bincount(pts.cell, minlength=pts.n_cells) == 7).all()
    np.testing.assert_array_equal(pts.weight, 1.0)
    hexes = district.cells.geometry.to_numpy()[pts.cell]
    assert shapely.contains_xy(hexes, pts.lon, pts.lat).all()
    # Spread over the cell: the centroid and six points a good way out, none at the rim.
    zones = district.cells.geometry.to_crs(crs).to_numpy()
    m = _metric(district, pts.lon, pts.lat)
    d = shapely.distance(shapely.centroid(zones[pts.cell]), m).reshape(-1, 7)
    radius = np.sqrt(shapely.area(zones) * 2 / (3 * np.sqrt(3)))  # circumradius of the hexagon
    rel = np.sort(d, axis=1) / radius[:, None]
    assert (rel[:, 0] < 1e-6).all() and (rel[:, 1:] > 0.6).all() and (rel[:, 1:] < 0.7).all()
    # Any polygon: the lattice scales to it, and every point lies inside.
    odd = np.array([shapely.Polygon([(0, 0), (1, 0), (0, 1)]),
                    shapely.box(0, 0, 400, 20), zones[0]], dtype=object)
    owner, p = lattice_samples(odd, 7)
    assert shapely.contains(odd[owner], p).all()
    assert len(np.bincount(owner)) == 3 and np.bincount(owner).min() >= 1


def test_housing_points_weigh_what_the_residents_estimate_weighs(
    district: geo.District, housing: CellPoints
) -> None:
    crs = district.meta["crs_metric"]
    zones = district.cells.geometry.to_crs(crs).to_numpy()
    landuse, buildings, _ = osm_housing(district)
    expected = housing_weights(
        zones, landuse.geometry.to_crs(crs).to_numpy(), buildings.geometry.to_crs(crs).to_numpy(),
        building_factor(buildings["building"]), district.edges.geometry.to_crs(crs).to_numpy(),
        floor_share=DEFAULT_FLOOR_SHARE,
    )
    got = np.bincount(housing.cell, weights=housing.weight, minlength=len(zones))
    weighed = expected > 0
    np.testing.assert_allclose(got[weighed], expected[weighed], rtol=1e-9)
    # The residents estimate is the same weights scaled: the points carry the cells' residents.
    pop = cell_demand(district)["population"].to_numpy()
    np.testing.assert_allclose(pop[weighed] / pop.sum(), expected[weighed] / expected.sum(),
                               rtol=1e-9)
    # A cell nothing weighs keeps its seven equal samples.
    bare = np.flatnonzero(~weighed)
    counts = np.bincount(housing.cell, minlength=len(zones))
    assert (counts[bare] == 7).all()
    assert (housing.weight[np.isin(housing.cell, bare)] == 1.0).all()
    # Every point lies in its cell, and housed cells have more than the fixed samples.
    m = _metric(district, housing.lon, housing.lat)
    assert (shapely.distance(zones[housing.cell], m) < 1e-6).all()
    assert (housing.weight > 0).all()
    assert counts[weighed].mean() > 7


def test_attach_near_is_every_street_within_the_snap(
    district: geo.District, network: WalkNetwork, edges_m: np.ndarray, housing: CellPoints
) -> None:
    rng = np.random.default_rng(11)
    pick = np.sort(rng.choice(len(housing), 300, replace=False))
    lon, lat = housing.lon[pick], housing.lat[pick]
    at, owner = network.attach_near(lon, lat, snap_m=DEFAULT_SNAP_M)
    p, e, offset, access = brute_attach_near(district, edges_m, _metric(district, lon, lat),
                                             DEFAULT_SNAP_M)
    got = pd.DataFrame({"p": owner, "e": at.edge, "off": at.offset_m, "acc": at.access_m})
    want = pd.DataFrame({"p": p, "e": e, "off": offset, "acc": access})
    got, want = (f.sort_values(["p", "e"]).reset_index(drop=True) for f in (got, want))
    pd.testing.assert_frame_equal(got[["p", "e"]], want[["p", "e"]])
    np.testing.assert_allclose(got["acc"], want["acc"], rtol=0, atol=TOL_M)
    np.testing.assert_allclose(got["off"], want["off"], rtol=0, atol=1e-4)
    assert (np.bincount(owner) > 1).mean() > 0.5  # most points have a choice of streets
    # Each point's first row is its nearest street, exactly as attach() puts it.
    first = np.r_[True, owner[1:] != owner[:-1]]
    one = network.attach(lon, lat)
    np.testing.assert_array_equal(at.edge[first], one.edge)
    np.testing.assert_array_equal(at.access_m[first], one.access_m)
    # No snap: attach().
    none, owner0 = network.attach_near(lon, lat, snap_m=0)
    np.testing.assert_array_equal(owner0, np.arange(len(lon)))
    np.testing.assert_array_equal(none.offset_m, one.offset_m)


# ------------------------------------------------------------------------- the cell walks


@pytest.mark.parametrize("points", ["housing", "samples"])
def test_cell_walk_matches_networkx(
    district: geo.District, network: WalkNetwork, edges_m: np.ndarray, ref: Reference,
    housing: CellPoints, cov: geo.Coverage, points: str
) -> None:
    """Each point: best street within the snap, best site (networkx); cell: weighted median."""
    pts = housing if points == "housing" else cell_points_of(network, district.cells)
    got = cov if points == "housing" else coverage(network, district.positions, district.cells)
    rng = np.random.default_rng(5)
    cells = np.sort(rng.choice(len(district.cells), 40, replace=False))
    mine = np.flatnonzero(np.isin(pts.cell, cells))
    p, e, offset, access = brute_attach_near(
        district, edges_m, _metric(district, pts.lon[mine], pts.lat[mine]), DEFAULT_SNAP_M)
    nodes = pd.Index(ref.node_ids)
    length = district.edges["length"].to_numpy()[e]
    u = nodes.get_indexer(district.edges["u"].to_numpy()[e])
    v = nodes.get_indexer(district.edges["v"].to_numpy()[e])
    s = ref.sources
    walk = np.minimum(ref.by_site[:, u] + offset, ref.by_site[:, v] + length - offset)
    same = e[None, :] == s.edge[:, None]
    along = np.abs(offset[None, :] - s.offset_m[:, None]) + s.access_m[:, None]
    walk = np.where(same, np.minimum(walk, along), walk) + access  # sites x (point, edge) rows
    point_m = np.full(len(mine), np.inf)
    np.minimum.at(point_m, p, walk.min(axis=0))
    site_ids = district.positions["site_id"].to_numpy()
    for c in cells:
        rows = np.flatnonzero(pts.cell[mine] == c)
        m, _ = weighted_median(point_m[rows], pts.weight[mine][rows])
        cid = district.cells["cell_id"].iloc[c]
        row = got.cells.loc[cid]
        assert row["walk_m"] == pytest.approx(m, abs=TOL_M)
        assert row["walk_minutes"] == pytest.approx(m / geo.DEFAULT_WALK_M_PER_MIN, rel=1e-12)
        within = pts.weight[mine][rows][point_m[rows] <= 1000.0].sum() / pts.weight[mine][
            rows].sum()
        assert row["within_share"] == pytest.approx(within, abs=1e-12)
        assert row["covered"] == (m <= 1000.0) == (within >= 0.5)
        assert row["points"] == len(rows)
        # The nearest site is one that a point at the median walk reaches in that many metres.
        site = list(site_ids).index(row["nearest_site"])
        at_median = rows[np.abs(point_m[rows] - m) < 1e-6]
        assert any(walk[site, p == r].min() == pytest.approx(m, abs=TOL_M) for r in at_median)
    np.testing.assert_allclose(got.points["walk_m"].to_numpy()[mine], point_m, rtol=0, atol=TOL_M)


def test_the_centres_own_cell_is_a_few_minutes_away(
    district: geo.District, network: WalkNetwork, cov: geo.Coverage
) -> None:
    center = district.positions[district.positions["level"] == "center"].iloc[0]
    cell = h3.latlng_to_cell(center.geometry.y, center.geometry.x, DEFAULT_H3_RESOLUTION)
    assert cell in set(district.cells["cell_id"])
    assert cov.cells.loc[cell, "walk_minutes"] < 5
    assert cov.cells.loc[cell, "within_share"] > 0.5
    # Its centre alone, on its one nearest street, is a long detour away (the old reading).
    one = district.cells[district.cells["cell_id"] == cell]
    centre = coverage(network, district.positions, one,
                      cell_points=CellPoints.one_per_cell(one["lon"], one["lat"]), snap_m=0)
    assert centre.cells.loc[cell, "walk_minutes"] > 15


def test_no_cell_holding_a_position_is_beyond_the_limit(
    district: geo.District, cov: geo.Coverage
) -> None:
    held = gpd.sjoin(district.positions[["site_id", "geometry"]], district.cells[["cell_id",
                     "geometry"]], predicate="within")["cell_id"].unique()
    assert len(held) >= 30
    cells = cov.cells.loc[held]
    assert cells["covered"].all(), cells.loc[~cells["covered"], ["walk_minutes"]]
    assert (cells["walk_minutes"] <= 15).all()


def test_covered_is_the_median_resident(cov: geo.Coverage) -> None:
    c = cov.cells
    np.testing.assert_array_equal(c["covered"], c["walk_m"] <= cov.limit_m)
    np.testing.assert_array_equal(c["covered"], c["within_share"] >= 0.5)
    assert 0 < c["covered"].mean() < 1
    # Cells have residents on both sides of the limit: a share, not all or nothing.
    assert ((c["within_share"] > 0) & (c["within_share"] < 1)).sum() > 50


def test_before_the_new_points_the_readme_figures_hold(
    district: geo.District, network: WalkNetwork
) -> None:
    """Centres on their nearest street: the figures of the README before this change."""
    cells = district.cells
    old = coverage(network, district.positions, cells, inside=district.nodes["inside"].to_numpy(),
                   cell_points=CellPoints.one_per_cell(cells["lon"], cells["lat"]), snap_m=0)
    pop = cell_demand(district)["population"].reindex(old.cells.index).to_numpy()
    f15 = access_stats(old.cells["walk_minutes"].to_numpy(), pop)["f15"]
    assert round(old.covered_node_share() * 100, 1) == 53.4  # the ends of bridges are nodes too
    assert round(old.covered_cell_share() * 100, 1) == 36.9
    assert round(f15 * 100, 1) == 60.7


def test_points_must_describe_the_cells(district: geo.District, network: WalkNetwork) -> None:
    with pytest.raises(ValueError, match="describe 3 cells"):
        coverage(network, district.positions, district.cells,
                 cell_points=CellPoints.one_per_cell(np.zeros(3), np.zeros(3)))

