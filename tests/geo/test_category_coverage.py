"""Coverage by service category and walking profiles: a hand-made network, then real 小店区."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

import geo
from geo import UnknownCategoryError
from geo._errors import UnknownProfileError
from geo.categories import CATEGORY_CODES
from geo.coverage import (
    access_stats,
    category_coverage,
    category_coverages,
    coverage,
    offered_categories,
    weighted_gini,
)
from geo.demand import cell_demand
from geo.network import WalkNetwork
from geo.profiles import PROFILES, network_for_profile, profile, usable_edges

UTM = CRS("EPSG:32649")
X0, Y0 = 500_000.0, 4_180_000.0  # metres, near Taiyuan


# ------------------------------------------------------------------ a network checkable by hand


def _wgs(x: list[float], y: list[float]) -> gpd.GeoSeries:
    pts = gpd.GeoSeries(gpd.points_from_xy(np.add(x, X0), np.add(y, Y0)), crs=UTM)
    return pts.to_crs("EPSG:4326")


#   E
#   |            A-B-C-D in a row, E above B; every edge is 100 m.
#   A--B--C--D
NODES = {"A": (0.0, 0.0), "B": (100.0, 0.0), "C": (200.0, 0.0), "D": (300.0, 0.0),
         "E": (100.0, 100.0)}
EDGES = [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")]


@pytest.fixture(scope="module")
def tiny() -> WalkNetwork:
    names = list(NODES)
    pts = _wgs([NODES[n][0] for n in names], [NODES[n][1] for n in names])
    nodes = gpd.GeoDataFrame(
        {"x": pts.x.to_numpy(), "y": pts.y.to_numpy()}, geometry=pts.to_numpy(), crs="EPSG:4326",
        index=pd.Index(np.arange(len(names), dtype=np.int64), name="osmid"),
    )
    idx = {n: i for i, n in enumerate(names)}
    lines = [shapely.LineString([pts.iloc[idx[a]], pts.iloc[idx[b]]]) for a, b in EDGES]
    edges = gpd.GeoDataFrame(
        {"u": [idx[a] for a, _ in EDGES], "v": [idx[b] for _, b in EDGES], "key": 0,
         "highway": "footway", "length": 100.0},
        geometry=lines, crs="EPSG:4326",
    )
    return WalkNetwork(nodes=nodes, edges=edges, crs_metric=UTM)


@pytest.fixture(scope="module")
def tiny_cells() -> pd.DataFrame:
    pts = _wgs([NODES[n][0] for n in "BCDE"], [NODES[n][1] for n in "BCDE"])
    return pd.DataFrame({"cell_id": list("BCDE"), "lon": pts.x.to_numpy(), "lat": pts.y.to_numpy()})


TINY_POP = pd.DataFrame({"population": [10.0, 20.0, 30.0, 40.0]},
                        index=pd.Index(list("BCDE"), name="cell_id"))


@pytest.fixture(scope="module")
def tiny_positions() -> gpd.GeoDataFrame:
    pts = _wgs([NODES["A"][0], NODES["D"][0]], [NODES["A"][1], NODES["D"][1]])
    return gpd.GeoDataFrame(
        {"site_id": ["P1", "P2"], "name": ["at A", "at D"], "categories": ["health", "culture"]},
        geometry=pts.to_numpy(), crs="EPSG:4326",
    )


TINY_TEAMS = pd.DataFrame({
    "team_id": ["t1", "t2"], "site_id": ["P1", "P2"], "category": ["culture", "legal"],
    "active": [False, True],
})
PACE = 100.0  # metres per minute: every edge is one minute
LIMIT = 2.5


def test_tiny_network_by_hand(tiny: WalkNetwork, tiny_cells: pd.DataFrame,
                              tiny_positions: gpd.GeoDataFrame) -> None:
    table = category_coverage(
        tiny, tiny_positions, tiny_cells, TINY_POP, teams=TINY_TEAMS, minutes=LIMIT,
        walk_m_per_min=PACE, categories=["health", "culture", "legal", "theory"],
    )
    # health only at A: B 1 min, C 2, D 3, E 2 (A-B-E).
    h = table.loc["health"]
    assert h["positions"] == 1
    assert h["f15"] == pytest.approx(70 / 100)  # B, C, E
    assert h["mean_minutes"] == pytest.approx((10 * 1 + 20 * 2 + 30 * 3 + 40 * 2) / 100)
    # Gini by mean absolute difference: sum_ij w_i w_j |x_i - x_j| / (2 W^2 mean).
    pairs = 2 * (1 * 10 * 60 + 2 * 10 * 30 + 1 * 60 * 30)
    assert h["gini"] == pytest.approx(pairs / (2 * 100**2 * 2.2))
    assert h["unreachable_share"] == 0
    # culture only at D (P1's culture team is inactive): B 2, C 1, D 0, E 3.
    c = table.loc["culture"]
    assert c["positions"] == 1
    assert c["f15"] == pytest.approx(60 / 100)
    assert c["mean_minutes"] == pytest.approx((10 * 2 + 20 * 1 + 0 + 40 * 3) / 100)
    # legal: not listed anywhere, but P2 hosts an active legal team.
    assert table.loc["legal", "f15"] == pytest.approx(0.6)
    # theory: nobody offers it.
    t = table.loc["theory"]
    assert t["positions"] == 0 and t["f15"] == 0 and t["unreachable_share"] == 1
    assert np.isnan(t["mean_minutes"]) and np.isnan(t["gini"])
    # All positions together: B 1, C 1, D 0, E 2 -> everyone within 2.5 minutes.
    every = coverage(tiny, tiny_positions, tiny_cells, minutes=LIMIT, walk_m_per_min=PACE)
    np.testing.assert_allclose(every.cells["walk_minutes"], [1, 1, 0, 2], atol=1e-6)
    stats = access_stats(every.cells["walk_minutes"].to_numpy(), TINY_POP["population"].to_numpy(),
                         minutes=LIMIT)
    assert stats["f15"] == 1.0
    assert stats["mean_minutes"] == pytest.approx((10 + 20 + 0 + 80) / 100, abs=1e-6)


def test_tiny_cells_minutes(tiny: WalkNetwork, tiny_cells: pd.DataFrame,
                            tiny_positions: gpd.GeoDataFrame) -> None:
    covs = category_coverages(tiny, tiny_positions, tiny_cells, teams=TINY_TEAMS,
                              minutes=LIMIT, walk_m_per_min=PACE, categories=["health", "theory"])
    np.testing.assert_allclose(covs["health"].cells["walk_minutes"], [1, 2, 3, 2], atol=1e-6)
    assert list(covs["health"].cells["covered"]) == [True, True, False, True]
    assert set(covs["health"].cells["nearest_site"]) == {"P1"}
    assert np.isinf(covs["theory"].cells["walk_minutes"]).all()
    assert covs["theory"].cells["nearest_site"].isna().all()


def test_weighted_gini() -> None:
    assert weighted_gini(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.25)
    assert weighted_gini(np.array([2.0, 2.0, 2.0]), np.array([1.0, 5.0, 2.0])) == 0.0
    # Weights act like repeated people.
    assert weighted_gini(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(
        weighted_gini(np.array([1.0, 1.0, 3.0]), np.ones(3))
    )
    assert np.isnan(weighted_gini(np.array([1.0]), np.array([0.0])))


def test_access_stats_unreachable() -> None:
    s = access_stats(np.array([5.0, np.inf]), np.array([3.0, 1.0]), minutes=15)
    assert s["f15"] == 0.75 and s["unreachable_share"] == 0.25
    assert s["mean_minutes"] == 5.0 and s["gini"] == 0.0


# ------------------------------------------------------------------ real district


@pytest.fixture(scope="module")
def demand(district: geo.District) -> pd.DataFrame:
    return cell_demand(district)


def test_categories_on_real_district(district: geo.District, demand: pd.DataFrame) -> None:
    net = district.network
    table = category_coverage(net, district.positions, district.cells, demand,
                              teams=district.teams)
    assert list(table.index) == list(CATEGORY_CODES)
    every = coverage(net, district.positions, district.cells)
    overall = access_stats(every.cells["walk_minutes"].to_numpy(),
                           demand["population"].reindex(every.cells.index).to_numpy(),
                           covered=every.cells["covered"].to_numpy())
    assert (table["f15"] <= overall["f15"] + 1e-12).all()
    assert ((table["gini"] >= 0) & (table["gini"] < 1)).all()
    # Each category equals plain coverage from just the positions offering it.
    offers = offered_categories(district.positions, district.teams)
    covs = category_coverages(net, district.positions, district.cells, teams=district.teams)
    for code in ("health", "elderly"):
        only = coverage(net, district.positions[offers[code].to_numpy()], district.cells)
        np.testing.assert_allclose(covs[code].cells["walk_m"], only.cells["walk_m"], rtol=1e-12)
        assert (covs[code].cells["walk_m"] >= every.cells["walk_m"] - 1e-9).all()


def test_category_only_at_center(district: geo.District, demand: pd.DataFrame) -> None:
    pos = district.positions.copy()
    center = (pos["level"] == "center").to_numpy()
    strip = pos["categories"].str.split(",").map(lambda c: ",".join(x for x in c if x != "legal"))
    pos["categories"] = np.where(center, pos["categories"], strip)
    teams = district.teams[district.teams["category"] != "legal"]
    assert offered_categories(pos, teams, categories=["legal"])["legal"].sum() == 1
    net = district.network
    table = category_coverage(net, pos, district.cells, demand, teams=teams,
                              categories=["legal", "health"])
    every = coverage(net, pos, district.cells)
    pop = demand["population"].reindex(every.cells.index).to_numpy()
    overall = access_stats(every.cells["walk_minutes"].to_numpy(), pop,
                           covered=every.cells["covered"].to_numpy())
    assert table.loc["legal", "positions"] == 1
    assert table.loc["legal", "f15"] <= overall["f15"]
    assert table.loc["legal", "f15"] < table.loc["health", "f15"]
    only_center = coverage(net, pos[center], district.cells)
    legal = category_coverages(net, pos, district.cells, teams=teams, categories=["legal"])
    np.testing.assert_allclose(legal["legal"].cells["walk_m"], only_center.cells["walk_m"])


def test_unknown_category(district: geo.District, demand: pd.DataFrame) -> None:
    with pytest.raises(UnknownCategoryError, match=r"'sports'.*可选：theory"):
        category_coverage(district.network, district.positions, district.cells, demand,
                          categories=["health", "sports"])


# ------------------------------------------------------------------ walking profiles


def test_profiles() -> None:
    std, old, wheel = profile("standard"), profile("elderly"), profile("wheelchair")
    assert std.walk_m_per_min == pytest.approx(1000 / 15)
    assert old.walk_m_per_min == pytest.approx(0.8 * 1000 / 15)
    assert wheel.walk_m_per_min < old.walk_m_per_min < std.walk_m_per_min
    assert wheel.excluded_highways == ("steps",)
    assert all(p.source for p in PROFILES.values())
    with pytest.raises(UnknownProfileError, match=r"'runner'.*standard, elderly, wheelchair"):
        profile("runner")
    assert isinstance(UnknownProfileError("x"), ValueError)


def test_wheelchair_network_has_no_steps(district: geo.District) -> None:
    steps = district.edges["highway"].str.split(";").map(lambda h: "steps" in h).to_numpy()
    assert steps.any()  # the real data has steps
    net = network_for_profile(district, "wheelchair")
    assert len(net.edges) == len(district.edges) - steps.sum()
    assert not net.edges["highway"].str.contains("steps").any()
    assert net.n_nodes == district.network.n_nodes
    assert network_for_profile(district, "elderly") is district.network
    assert usable_edges(district.edges, profile("standard")).all()
    # Slower and with fewer streets: never better covered than the standard profile.
    wheel = coverage(net, district.positions, district.cells,
                     walk_m_per_min=profile("wheelchair").walk_m_per_min)
    std = coverage(district.network, district.positions, district.cells)
    assert (wheel.cells["walk_minutes"] >= std.cells["walk_minutes"] - 1e-9).all()
    assert wheel.covered_cell_share() < std.covered_cell_share()
