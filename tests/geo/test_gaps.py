"""Coverage gaps on real 小店区: contiguous, ranked, and accounting for every uncovered resident."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geo
from geo import UnknownCategoryError
from geo.coverage import Coverage, category_coverages, coverage
from geo.demand import cell_demand
from geo.gaps import gaps


@pytest.fixture(scope="module")
def demand(district: geo.District) -> pd.DataFrame:
    return cell_demand(district)


@pytest.fixture(scope="module")
def cov(district: geo.District) -> Coverage:
    return coverage(district.network, district.positions, district.cells)


@pytest.fixture(scope="module")
def result(district: geo.District, cov: Coverage, demand: pd.DataFrame) -> gpd.GeoDataFrame:
    return gaps(cov.cells, district.cells, demand, positions=district.positions)


def test_gaps_hold_every_uncovered_resident(cov: Coverage, demand: pd.DataFrame,
                                            result: gpd.GeoDataFrame) -> None:
    uncovered = cov.cells.index[~cov.cells["covered"]]
    assert len(uncovered) > 0
    assert result["residents"].sum() == pytest.approx(demand.loc[uncovered, "population"].sum())
    assert result["cells"].sum() == len(uncovered)
    assert result.crs.to_epsg() == 4326
    assert list(result["rank"]) == list(range(1, len(result) + 1))
    assert result["residents"].is_monotonic_decreasing
    assert result["gap_id"].is_unique


def test_gaps_are_contiguous_and_apart(district: geo.District, cov: Coverage,
                                       result: gpd.GeoDataFrame) -> None:
    assert (result.geom_type == "Polygon").all()  # one piece each
    metric = result.geometry.to_crs(district.meta["crs_metric"]).to_numpy()
    d = shapely.distance(metric[:, None], metric[None, :])
    off = ~np.eye(len(metric), dtype=bool)
    assert (d[off] > 1.0).all()  # different gaps do not touch
    # Every uncovered cell centre lies in exactly one gap; no covered one lies in any.
    cells = district.cells.set_index("cell_id")
    centres = shapely.points(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    inside = shapely.contains(result.geometry.to_numpy()[:, None], centres[None, :]).sum(axis=0)
    covered = cov.cells["covered"].reindex(cells.index).to_numpy()
    assert (inside[~covered] == 1).all()
    assert (inside[covered] == 0).all()


def test_gap_fields(district: geo.District, cov: Coverage, result: gpd.GeoDataFrame) -> None:
    limit = cov.minutes
    assert (result["nearest_walk_minutes"] > limit).all()
    assert (result["nearest_walk_minutes"] <= result["mean_minutes"] + 1e-9).all()
    assert (result["mean_minutes"] <= result["worst_minutes"] + 1e-9).all()
    names = district.positions.set_index("site_id")["name"]
    assert (result["nearest_site_name"] == names[result["nearest_site_id"]].to_numpy()).all()
    assert (result["area_km2"] > 0).all()
    one_cell = district.cells.iloc[[0]].to_crs(district.meta["crs_metric"]).area.iloc[0] / 1e6
    np.testing.assert_allclose(result["area_km2"], result["cells"] * one_cell, rtol=0.01)
    feature = json.loads(result.to_json())["features"][0]
    assert feature["properties"]["gap_id"] == "G001"


def test_category_gaps_with_unreachable_cells(district: geo.District,
                                              demand: pd.DataFrame) -> None:
    pos = district.positions.copy()
    pos["categories"] = pos["categories"].str.replace("science", "", regex=False)
    teams = district.teams[district.teams["category"] != "science"]
    covs = category_coverages(district.network, pos, district.cells, teams=teams,
                              categories=["science"])
    g = gaps(covs["science"].cells, district.cells, demand, positions=pos, category="science")
    assert g["residents"].sum() == pytest.approx(demand["population"].sum())
    assert (g["unreachable_cells"] == g["cells"]).all()
    assert g["worst_minutes"].isna().all() and g["nearest_site_id"].isna().all()
    assert (g["category"] == "science").all() and g["gap_id"].str.startswith("science-G").all()
    text = g.to_json()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text)


def test_min_residents_and_unknown_category(district: geo.District, cov: Coverage,
                                            demand: pd.DataFrame,
                                            result: gpd.GeoDataFrame) -> None:
    big = gaps(cov.cells, district.cells, demand, min_residents=5.0)
    assert (big["residents"] >= 5.0).all()
    assert len(big) == int((result["residents"] >= 5.0).sum())
    with pytest.raises(UnknownCategoryError, match="可选"):
        gaps(cov.cells, district.cells, demand, category="parking")
