"""Where to add sites: the coverage matrix, the optimisers and the check by recomputation."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pulp
import pytest
import shapely
from scipy import sparse
from spopt.locate import MCLP

import geo
from geo import siting
from geo._errors import SitingError, UnknownCategoryError
from geo.coverage import cell_points_of, coverage


@pytest.fixture(scope="module")
def weights(district: geo.District) -> np.ndarray:
    """A demand proxy from real data: residential OSM polygons per cell, plus one."""
    res = district.places[district.places["kind"] == "residential"]
    pts = res.geometry.to_crs(district.network.crs_metric).representative_point().to_crs(4326)
    hits = gpd.sjoin(
        gpd.GeoDataFrame(geometry=pts.to_numpy(), crs="EPSG:4326"),
        district.cells[["geometry"]],
        predicate="within",
    )
    counts = np.bincount(hits["index_right"].to_numpy(), minlength=len(district.cells))
    return counts.astype(float) + 1.0


@pytest.fixture(scope="module")
def candidates(district: geo.District) -> gpd.GeoDataFrame:
    return siting.siting_candidates(district)


def _lonlat(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.column_stack([frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()])


def _spopt_objective(cost: np.ndarray, w: np.ndarray, p: int,
                     predefined: np.ndarray | None = None) -> float:
    with warnings.catch_warnings():
        # spopt 0.7 builds its model through PuLP 3.3 calls that PuLP flags for 4.0.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulp")
        model = MCLP.from_cost_matrix(cost, w, service_radius=0.5, p_facilities=p,
                                      predefined_facilities_arr=predefined)
        model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    return float(pulp.value(model.problem.objective))


# ---------------------------------------------------------------------------- candidates


def test_candidates_are_real_places_not_yet_positions(
    district: geo.District, candidates: gpd.GeoDataFrame
) -> None:
    taken = set(district.positions["osm_id"])
    assert len(candidates) > 0
    assert not set(candidates["osm_id"]) & taken
    assert set(candidates["osm_id"]) <= set(district.places["osm_id"])
    # Every free place inside the outline is a candidate; none outside it is.
    free = district.places[~district.places["osm_id"].isin(taken)]
    point = free.geometry.to_crs(district.network.crs_metric).representative_point().to_crs(4326)
    within = shapely.contains_xy(district.outline, point.x.to_numpy(), point.y.to_numpy())
    assert 0 < within.sum() < len(free)  # the network's margin holds places of other districts
    assert set(candidates["osm_id"]) == set(free["osm_id"][within])
    assert shapely.contains_xy(district.outline, candidates["lon"].to_numpy(),
                               candidates["lat"].to_numpy()).all()
    assert candidates["inside"].all()
    names = district.places.set_index("osm_id")["name"]
    assert (candidates["name"].to_numpy() == names[candidates["osm_id"]].to_numpy()).all()
    assert (candidates.geom_type == "Point").all()
    unnamed = candidates[candidates["name"] == ""]
    assert unnamed["label"].str.contains("无名称").all()


# ------------------------------------------------------------------------ coverage matrix


def test_candidate_coverage_agrees_with_coverage(
    district: geo.District, candidates: gpd.GeoDataFrame
) -> None:
    points = cell_points_of(district.network, district.cells)
    limit = 15 * geo.DEFAULT_WALK_M_PER_MIN
    cand = candidates[["lon", "lat"]].to_numpy()
    reach = siting.candidate_reach(district.network, cand, points, limit_m=limit)
    cover = siting.candidate_coverage(district.network, cand, points, limit_m=limit)
    assert sparse.issparse(cover)
    assert cover.shape == (len(district.cells), len(candidates))
    assert reach.shape == (len(points), len(candidates))
    assert cover.dtype == bool and reach.dtype == bool
    # Every candidate at once, as positions: a point is within the limit of them all when it is
    # within that of one; a cell one covers alone is covered, and together they cover more.
    as_sites = gpd.GeoDataFrame({"site_id": candidates["osm_id"]}, geometry=candidates.geometry,
                                crs="EPSG:4326")
    together = coverage(district.network, as_sites, district.cells)
    np.testing.assert_array_equal(np.asarray(reach.sum(axis=1)).ravel() > 0,
                                  together.points["walk_m"].to_numpy() <= limit)
    union = np.asarray(cover.sum(axis=1)).ravel() > 0
    covered = together.cells["covered"].to_numpy()
    assert (covered | ~union).all()
    assert 0 <= covered.sum() - union.sum() < 0.05 * len(union)
    # A few candidates one by one: each column, for the points and for the cells.
    n_reach = np.diff(cover.tocsc().indptr)
    for j in [int(np.argmax(n_reach)), *np.flatnonzero(n_reach)[:3].tolist(), 0]:
        alone = coverage(district.network, as_sites.iloc[[j]], district.cells)
        np.testing.assert_array_equal(cover[:, [j]].toarray().ravel(),
                                      alone.cells["covered"].to_numpy())
        np.testing.assert_array_equal(reach[:, [j]].toarray().ravel(),
                                      alone.points["walk_m"].to_numpy() <= limit)


def test_candidate_coverage_of_positions_is_existing_coverage(district: geo.District) -> None:
    pos = district.positions
    points = cell_points_of(district.network, district.cells)
    limit = 15 * geo.DEFAULT_WALK_M_PER_MIN
    existing = siting.existing_coverage(district)
    within = existing.points["walk_m"].to_numpy() <= limit
    reach = siting.candidate_reach(district.network, _lonlat(pos), points, limit_m=limit)
    np.testing.assert_array_equal(np.asarray(reach.sum(axis=1)).ravel() > 0, within)
    anyone = sparse.csr_matrix(np.asarray(reach.sum(axis=1)) > 0)  # all positions as one
    np.testing.assert_array_equal(siting.cell_cover(points, anyone).toarray().ravel(),
                                  existing.cells["covered"].to_numpy())
    # With the positions' own reach as already covered, no position brings a cell anew.
    again = siting.candidate_coverage(district.network, _lonlat(pos), points, limit_m=limit,
                                      covered_points=within)
    assert again.nnz == 0


def test_category_baseline_is_category_coverage(district: geo.District) -> None:
    from geo.coverage import category_coverages

    for code in ("theory", "elderly"):
        ours = siting.existing_coverage(district, category=code)
        theirs = category_coverages(district.network, district.positions, district.cells,
                                    teams=district.teams, categories=[code])[code]
        np.testing.assert_array_equal(ours.cells["covered"].to_numpy(),
                                      theirs.cells["covered"].to_numpy())
        assert ours.cells["covered"].sum() < siting.existing_coverage(district).cells[
            "covered"].sum()


def test_candidate_coverage_empty_and_bad_input(district: geo.District) -> None:
    cells = district.cells[["lon", "lat"]].to_numpy()
    assert siting.candidate_coverage(district.network, np.empty((0, 2)), cells,
                                     limit_m=500).shape == (len(cells), 0)
    with pytest.raises(ValueError, match="limit_m must be positive"):
        siting.candidate_coverage(district.network, cells[:2], cells, limit_m=0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        siting.candidate_coverage(district.network, np.ones((3, 3)), cells, limit_m=500)


# --------------------------------------------------------------- recommendations, checked


@pytest.mark.parametrize(("category", "method"), [(None, "exact"), ("theory", "exact"),
                                                  ("theory", "greedy"), ("elderly", "auto")])
def test_recommended_sites_raise_coverage_by_what_they_claim(
    district: geo.District, weights: np.ndarray, category: str | None, method: str
) -> None:
    picks = siting.recommend_sites(district, 5, weights, category=category, method=method)
    assert 1 <= len(picks) <= 5
    assert list(picks["rank"]) == list(range(1, len(picks) + 1))
    assert (picks["new_residents"] > 0).all()
    assert picks["cumulative_f15"].is_monotonic_increasing
    base = siting.existing_coverage(district, category=category)
    before = weights[base.cells["covered"].to_numpy()].sum()
    assert picks.attrs["baseline_f15"] == pytest.approx(siting.covered_share(base, weights))
    for n in range(1, len(picks) + 1):
        extra = gpd.GeoDataFrame(
            geometry=gpd.points_from_xy(picks["lon"][:n], picks["lat"][:n]), crs="EPSG:4326"
        )
        after = siting.coverage_with_extra_sites(district, extra, category=category)
        got = weights[after.cells["covered"].to_numpy()].sum()
        assert got == before + picks["new_residents"][:n].sum()
        assert siting.covered_share(after, weights) == pytest.approx(
            picks["cumulative_f15"].iloc[n - 1])
        # Only the district's own cells: the new sites reach no fewer cells than claimed.
        assert after.cells["covered"].sum() == (
            base.cells["covered"].sum() + picks["new_cells"][:n].sum())
    assert picks.attrs["final_f15"] == pytest.approx(picks["cumulative_f15"].iloc[-1])


@pytest.mark.parametrize("category", [None, "theory", "elderly", "assistance"])
def test_recommended_sites_are_inside_the_district(
    district: geo.District, weights: np.ndarray, category: str | None
) -> None:
    """A district opens sites on its own ground: never a place in the network's outer margin."""
    picks = siting.recommend_sites(district, 10, weights, category=category, method="greedy")
    assert len(picks) > 0
    inside = shapely.contains_xy(district.outline, picks["lon"].to_numpy(),
                                 picks["lat"].to_numpy())
    assert inside.all(), picks.loc[~inside, ["label", "osm_id", "lon", "lat"]].to_dict("records")
    assert picks["inside"].all()


def test_recommendation_columns_and_attrs(district: geo.District, weights: np.ndarray) -> None:
    picks = siting.recommend_sites(district, 3, weights, category="theory", method="exact")
    assert list(picks.columns) == ["rank", "name", "label", "osm_id", "kind", "lon", "lat",
                                   "inside", "new_cells", "new_residents", "cumulative_f15"]
    a = picks.attrs
    assert a["method"] == "exact" and a["optimal"] is True
    assert a["gap"] is not None and 0.0 <= a["gap"] < 1.0
    assert a["exact_objective"] >= a["greedy_objective"]
    assert a["residents"] == weights.sum()
    assert a["category"] == "theory" and a["requested"] == 3
    assert set(picks["osm_id"]) <= set(district.places["osm_id"])
    assert not set(picks["osm_id"]) & set(district.positions["osm_id"])


def test_auto_falls_back_to_greedy_when_large(district: geo.District,
                                              weights: np.ndarray) -> None:
    picks = siting.recommend_sites(district, 4, weights, category="theory", max_exact_nnz=1)
    assert picks.attrs["method"] == "greedy"
    assert picks.attrs["gap"] is None and picks.attrs["exact_objective"] is None


def test_fewer_useful_sites_than_asked_are_reported(district: geo.District,
                                                    weights: np.ndarray) -> None:
    n = len(siting.siting_candidates(district))
    picks = siting.recommend_sites(district, n, weights, method="greedy")
    assert len(picks) < n
    assert f"only {len(picks)} of the {n} requested" in picks.attrs["note"]


# ------------------------------------------------------------------ greedy, exact, spopt


def test_greedy_never_beats_exact_on_the_district(district: geo.District,
                                                  weights: np.ndarray) -> None:
    for category in (None, "theory", "legal", "assistance"):
        for k in (1, 2, 3, 5, 8):
            picks = siting.recommend_sites(district, k, weights, category=category,
                                           method="exact")
            a = picks.attrs
            assert a["greedy_objective"] <= a["exact_objective"] + 1e-9
            # The gains count the picks together: at least the objective (cells each pick
            # brings in with the existing positions), more when two picks share a cell.
            assert picks["new_residents"].sum() >= a["exact_objective"] - 1e-9


def test_exact_is_optimal_and_greedy_gap_shows() -> None:
    # Greedy takes the big middle set first and ends one short of the two halves.
    cover = sparse.csr_matrix(np.array([
        [1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 1, 1], [0, 1, 1], [0, 0, 1],
    ], dtype=bool))
    w = np.ones(6)
    sol = siting.maximal_coverage(cover, w, 2, method="exact")
    assert sol.exact is not None and sol.exact.optimal
    assert sol.greedy.objective == 5 and sol.exact.objective == 6
    assert sorted(sol.exact.picks.tolist()) == [0, 2]
    assert sol.gap == pytest.approx(1 / 6)
    assert sol.best is sol.exact


def test_exact_matches_brute_force_and_bounds_greedy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        n_cells, n_cand, k = 30, 9, int(rng.integers(1, 5))
        dense = rng.random((n_cells, n_cand)) < 0.18
        w = rng.integers(0, 6, n_cells).astype(float)
        best = max(w[dense[:, list(c)].any(axis=1)].sum()
                   for c in itertools.combinations(range(n_cand), k))
        sol = siting.maximal_coverage(sparse.csr_matrix(dense), w, k, method="exact")
        assert sol.exact is not None
        assert sol.exact.objective == best
        assert sol.greedy.objective <= best
        assert w[dense[:, sol.exact.picks].any(axis=1)].sum() == best
        # The reductions (dominated candidates dropped, equal cells merged) keep the optimum.
        for max_pairs in (0, 10**9):
            red, rw, _ = siting._reduce(sparse.csr_matrix(dense), w, max_pairs=max_pairs)
            m = red.toarray()
            kk = min(k, m.shape[1])
            assert max((rw[m[:, list(c)].any(axis=1)].sum()
                        for c in itertools.combinations(range(m.shape[1]), kk)),
                       default=0.0) == best
            assert rw.sum() == w[dense.any(axis=1)].sum()


def test_exact_matches_spopt_mclp_on_real_subset(
    district: geo.District, weights: np.ndarray, candidates: gpd.GeoDataFrame
) -> None:
    """The reduced 小店区 problem (open cells for 'theory' x the candidates reaching them)."""
    base = siting.existing_coverage(district, category="theory")
    open_w = np.where(base.cells["covered"].to_numpy(), 0.0, weights)
    cover = siting.candidate_coverage(
        district.network, candidates[["lon", "lat"]].to_numpy(),
        cell_points_of(district.network, district.cells), limit_m=base.limit_m,
        covered_points=base.points["walk_m"].to_numpy() <= base.limit_m,
    )
    rows = np.flatnonzero((open_w > 0) & (np.diff(cover.indptr) > 0))
    sub = cover[rows]
    cols = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
    sub = sub[:, cols]
    assert sub.shape[0] >= 10 and sub.shape[1] >= 5
    cost = np.where(sub.toarray(), 0.0, 1.0)  # small: only the reduced problem is dense
    assert siting._reduce(sub.tocsr(), open_w[rows])[0].shape[1] > 3  # k = 1, 3 call CBC
    for k in (1, 3, 5):
        ours = siting.exact_max_coverage(sub, open_w[rows], k)
        assert ours.optimal
        assert ours.objective == pytest.approx(_spopt_objective(cost, open_w[rows], k))


def test_existing_sites_fixed_matches_spopt_predefined_facilities(
    district: geo.District, weights: np.ndarray, candidates: gpd.GeoDataFrame
) -> None:
    """The full problem, existing positions as spopt's predefined facilities.

    A position's column is what the existing positions cover together; a candidate's, the cells
    it brings within the limit with them (the model :func:`geo.siting.recommend_sites` solves).
    """
    points = cell_points_of(district.network, district.cells)
    base = siting.existing_coverage(district)
    covered = base.cells["covered"].to_numpy()
    within = base.points["walk_m"].to_numpy() <= base.limit_m
    cand = siting.candidate_coverage(district.network, candidates[["lon", "lat"]].to_numpy(),
                                     points, limit_m=base.limit_m, covered_points=within)
    pos = district.positions
    cover = np.hstack([np.repeat(covered[:, None], len(pos), axis=1), cand.toarray()])
    predefined = np.r_[np.ones(len(pos), int), np.zeros(len(candidates), int)]
    cost = np.where(cover, 0.0, 1.0)
    k = 3
    picks = siting.recommend_sites(district, k, weights, method="exact")
    assert picks.attrs["exact_objective"] + weights[covered].sum() == pytest.approx(
        _spopt_objective(cost, weights, len(pos) + k, predefined))
    ours = weights[covered].sum() + picks["new_residents"].sum()
    assert ours >= picks.attrs["exact_objective"] + weights[covered].sum() - 1e-9


# ---------------------------------------------------------------------------- errors


def test_k_too_large_or_small(district: geo.District, weights: np.ndarray) -> None:
    n = len(siting.siting_candidates(district))
    with pytest.raises(SitingError, match=rf"cannot add {n + 1} sites .* {n} candidate places"):
        siting.recommend_sites(district, n + 1, weights)
    with pytest.raises(SitingError, match="cannot add 0 sites"):
        siting.recommend_sites(district, 0, weights)
    with pytest.raises(ValueError, match="cannot add 4 sites: there are 3"):
        siting.maximal_coverage(sparse.csr_matrix(np.eye(3, dtype=bool)), np.ones(3), 4)


def test_unknown_category(district: geo.District, weights: np.ndarray) -> None:
    with pytest.raises(UnknownCategoryError, match="可选：theory, culture"):
        siting.recommend_sites(district, 2, weights, category="karaoke")
    extra = gpd.GeoDataFrame(geometry=gpd.points_from_xy([112.55], [37.80]), crs="EPSG:4326")
    with pytest.raises(UnknownCategoryError, match="karaoke"):
        siting.coverage_with_extra_sites(district, extra, category="karaoke")


def test_bad_weights_and_method(district: geo.District, weights: np.ndarray) -> None:
    with pytest.raises(ValueError, match="demand weights for"):
        siting.recommend_sites(district, 2, weights[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        siting.recommend_sites(district, 2, -weights)
    with pytest.raises(ValueError, match="unknown method"):
        siting.recommend_sites(district, 2, weights, method="annealing")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- extra sites


def test_read_extra_sites_and_recompute(district: geo.District, weights: np.ndarray,
                                        tmp_path: Path) -> None:
    picks = siting.recommend_sites(district, 3, weights, category="theory")
    gdf = gpd.GeoDataFrame({"name": picks["label"]},
                           geometry=gpd.points_from_xy(picks["lon"], picks["lat"]),
                           crs="EPSG:4326")
    path = tmp_path / "extra.geojson"
    gdf.to_file(path, driver="GeoJSON")
    extra = siting.read_extra_sites(path)
    assert list(extra["site_id"]) == [f"extra-{i + 1}" for i in range(len(picks))]
    assert list(extra["name"]) == list(picks["label"])
    after = siting.coverage_with_extra_sites(district, extra, category="theory")
    assert siting.covered_share(after, weights) == pytest.approx(picks.attrs["final_f15"])
    assert set(after.cells["nearest_site"].dropna()) & set(extra["site_id"])
    # Without category, the extra sites join every existing position.
    everyone = siting.coverage_with_extra_sites(district, extra)
    assert everyone.cells["covered"].sum() >= after.cells["covered"].sum()


def test_read_extra_sites_errors(tmp_path: Path) -> None:
    with pytest.raises(SitingError, match="no such file"):
        siting.read_extra_sites(tmp_path / "missing.geojson")
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(SitingError, match="no sites"):
        siting.read_extra_sites(empty)
    poly = tmp_path / "poly.geojson"
    poly.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon",
                     "coordinates": [[[112.5, 37.8], [112.51, 37.8], [112.51, 37.81],
                                      [112.5, 37.8]]]}}]}))
    with pytest.raises(SitingError, match="must be points; found Polygon"):
        siting.read_extra_sites(poly)
    junk = tmp_path / "junk.geojson"
    junk.write_text("not json at all")
    with pytest.raises(SitingError, match="cannot read extra sites"):
        siting.read_extra_sites(junk)


def test_extra_sites_must_be_points(district: geo.District) -> None:
    lines = gpd.GeoSeries.from_wkt(["LINESTRING (112.55 37.80, 112.56 37.81)"], crs="EPSG:4326")
    with pytest.raises(SitingError, match="must be points"):
        siting.coverage_with_extra_sites(district, lines)


def test_extra_sites_in_another_crs(district: geo.District) -> None:
    p = district.positions.geometry.iloc[[0]]
    wgs = siting.coverage_with_extra_sites(district, p)
    utm = siting.coverage_with_extra_sites(district, p.to_crs(district.network.crs_metric))
    np.testing.assert_array_equal(wgs.cells["covered"].to_numpy(),
                                  utm.cells["covered"].to_numpy())
    assert isinstance(wgs.cells, pd.DataFrame)
