"""The bundled district: deterministic demo registry, cache round trip, names and extract share."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from scipy.sparse.csgraph import connected_components

import geo
from geo.categories import CATEGORY_CODES
from geo.district import build_bundled_district, get_district, load_district

LEVEL_UP = {"township": "center", "community": "township", "site": "community"}
ORDER = ["center", "township", "community", "site"]


def registry_digest(district: geo.District) -> str:
    """A digest of everything the registry decides (ids, roles, parents, categories, teams)."""
    pos = district.positions
    rows = pos[["site_id", "level", "name", "osm_id", "kind", "parent_id", "categories"]]
    text = rows.astype(str).to_csv(index=False) + "\n".join(pos.geometry.to_wkt())
    text += district.teams.astype(str).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- the registry


@pytest.mark.slow
def test_registry_is_deterministic_in_process(built_district: geo.District) -> None:
    again = build_bundled_district(geo.DEFAULT_DISTRICT)
    assert_geodataframe_equal(again.positions, built_district.positions)
    pd.testing.assert_frame_equal(again.teams, built_district.teams)
    assert_geodataframe_equal(again.cells, built_district.cells)
    assert registry_digest(again) == registry_digest(built_district)


@pytest.mark.slow
def test_registry_is_deterministic_across_processes(
    built_district: geo.District, cache_dir: Path, tmp_path: Path
) -> None:
    code = (
        "import sys, geo\n"
        "from tests.geo.test_district import registry_digest\n"
        "from geo.district import build_bundled_district\n"
        "print(registry_digest(build_bundled_district(geo.DEFAULT_DISTRICT)))\n"
    )
    # A fresh cache: the subprocess recomputes the extract footprint too.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PRACTICE_CIRCLE_CACHE": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == registry_digest(built_district)


def test_every_record_is_demo_and_from_osm(district: geo.District) -> None:
    pos = district.positions
    assert len(pos) > 20
    assert pos["demo"].map(lambda v: v is True or v is np.True_).all()
    assert district.teams["demo"].map(lambda v: v is True or v is np.True_).all()
    assert pos["osm_id"].map(lambda s: bool(re.fullmatch(r"(node|way|relation)/\d+", s))).all()
    assert set(pos["osm_id"]) <= set(district.places["osm_id"])
    assert pos["site_id"].is_unique
    assert pos["osm_id"].is_unique
    assert (pos["name"].str.len() > 0).all()
    assert district.meta["demo_registry"] is True


def test_positions_lie_in_the_study_area(district: geo.District) -> None:
    pts = district.positions.geometry.to_numpy()
    assert shapely.covers(district.study_area, pts).all()


def test_exactly_one_center_with_all_categories(district: geo.District) -> None:
    pos = district.positions
    center = pos[pos["level"] == "center"]
    assert len(center) == 1
    assert pd.isna(center["parent_id"].iloc[0])
    assert center["categories"].iloc[0].split(",") == list(CATEGORY_CODES)
    assert set(pos["level"]) <= set(ORDER)
    assert (pos["level"] == "township").any()
    assert (pos["level"] == "community").any()
    assert (pos["level"] == "site").any()
    assert pos["categories"].map(lambda c: set(c.split(",")) <= set(CATEGORY_CODES)).all()


def test_parents_exist_and_sit_one_level_up(district: geo.District) -> None:
    pos = district.positions.set_index("site_id")
    metric = pos.geometry.to_crs(district.meta["crs_metric"])
    present = set(pos["level"])
    for site_id, row in pos.iterrows():
        if row["level"] == "center":
            continue
        parent = row["parent_id"]
        assert parent in pos.index, site_id
        # One level up, or the next level above that when a level has no positions at all.
        want = LEVEL_UP[row["level"]]
        while want not in present:
            want = LEVEL_UP[want]
        assert pos.at[parent, "level"] == want, site_id
        # And the nearest position of that level.
        same = pos.index[pos["level"] == want]
        d = metric[same].distance(metric[site_id])
        assert d[parent] == pytest.approx(d.min()), site_id


def test_teams_belong_to_stations(district: geo.District) -> None:
    teams, pos = district.teams, district.positions.set_index("site_id")
    assert len(teams) > 0
    assert teams["team_id"].is_unique
    assert set(teams["site_id"]) <= set(pos.index)
    assert set(pos.loc[teams["site_id"], "level"]) <= {"center", "township", "community"}
    for t in teams.itertuples():
        assert t.category in pos.at[t.site_id, "categories"].split(",")
    assert teams["capacity"].between(1, 3).all()


def test_cells_point_to_a_station(district: geo.District) -> None:
    pos = district.positions.set_index("site_id")
    assert district.cells["cell_id"].is_unique
    assert set(district.cells["parent_id"]) <= set(pos.index)
    assert set(pos.loc[district.cells["parent_id"], "level"]) <= {"center", "township", "community"}


# ------------------------------------------------------------------------ network and meta


def test_network_is_one_component_with_inside_flags(district: geo.District) -> None:
    n_comp, _ = connected_components(district.network.csr, directed=False)
    assert n_comp == 1
    x, y = district.nodes["x"].to_numpy(), district.nodes["y"].to_numpy()
    np.testing.assert_array_equal(
        district.nodes["inside"].to_numpy(), shapely.contains_xy(district.outline, x, y)
    )
    assert 0 < district.nodes["inside"].mean() < 1  # the margin reaches beyond the outline


def test_meta_counts_match_the_data(district: geo.District) -> None:
    meta = district.meta
    assert meta["name"] == geo.DEFAULT_DISTRICT
    assert meta["nodes"] == len(district.nodes)
    assert meta["edges"] == len(district.edges)
    assert meta["positions"] == len(district.positions)
    assert meta["teams"] == len(district.teams)
    assert meta["cells"] == len(district.cells)
    assert meta["network_km"] == pytest.approx(district.edges["length"].sum() / 1000)
    assert "OpenStreetMap" in meta["attribution"]


def test_extract_share(district: geo.District) -> None:
    share = district.extract_share
    assert 0.05 < share < 0.5  # FIELD-NOTES: about 15 %
    # The share is the study area's part of the outline, measured here in an equal-area CRS.
    albers = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m"
    areas = gpd.GeoSeries([district.study_area, district.outline], crs="EPSG:4326").to_crs(albers)
    assert share == pytest.approx(areas.iloc[0].area / areas.iloc[1].area, rel=0.01)
    assert f"{share:.0%}" in district.meta["extract_note"]


def test_bundled_districts_listing(cache_dir: Path) -> None:
    known = geo.bundled_districts()
    names = [d.name for d in known]
    assert geo.DEFAULT_DISTRICT in names
    assert "迎泽区" in names
    shares = [d.extract_share for d in known]
    assert shares == sorted(shares, reverse=True)
    assert all(0 < s <= 1 for s in shares)


# ---------------------------------------------------------------------------------- cache


def test_cache_round_trip(built_district: geo.District, district: geo.District) -> None:
    assert district.meta == built_district.meta
    assert_geodataframe_equal(district.nodes, built_district.nodes, check_index_type=False)
    assert_geodataframe_equal(district.edges, built_district.edges)
    assert_geodataframe_equal(district.positions, built_district.positions)
    assert_geodataframe_equal(district.cells, built_district.cells)
    assert_geodataframe_equal(district.places, built_district.places)
    pd.testing.assert_frame_equal(district.teams, built_district.teams)
    assert district.outline.equals(built_district.outline)
    assert district.study_area.equals(built_district.study_area)
    # The reloaded network is the same graph.
    a, b = district.network.csr, built_district.network.csr
    assert a.shape == b.shape
    assert abs(a - b).max() == 0


def test_cached_districts_lists_the_build(cache_dir: Path) -> None:
    assert geo.DEFAULT_DISTRICT in geo.cached_districts(cache_dir)
    assert (cache_dir / "districts" / geo.DEFAULT_DISTRICT / "meta.json").is_file()
    assert not [p for p in (cache_dir / "districts").iterdir() if p.name.startswith(".")]


def test_get_district_loads_from_cache(cache_dir: Path, district: geo.District) -> None:
    folder = cache_dir / "districts" / geo.DEFAULT_DISTRICT
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = get_district(geo.DEFAULT_DISTRICT, cache_dir=cache_dir)
    assert again.meta["nodes"] == len(again.nodes)
    # Read, not rebuilt: a build would save the district again.
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert again.meta == district.meta
    assert_geodataframe_equal(again.positions, district.positions)


def test_unknown_district_lists_known_names(cache_dir: Path) -> None:
    with pytest.raises(geo.UnknownDistrictError, match="不存在区") as info:
        get_district("不存在区", cache_dir=cache_dir)
    message = str(info.value)
    for name in (geo.DEFAULT_DISTRICT, "迎泽区"):
        assert name in message
    assert not (cache_dir / "districts" / "不存在区").exists()


def test_unknown_district_not_built(cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(geo.UnknownDistrictError, match="not built"):
        load_district("不存在区", tmp_path)
    with pytest.raises(geo.UnknownDistrictError, match=r"known districts: .*小店区"):
        build_bundled_district("不存在区")


def test_every_bundled_outline_is_polygonal_and_overlaps_the_extract() -> None:
    from shapely.geometry import MultiPolygon, Polygon

    from geo.district import bundled_districts

    for b in bundled_districts():
        assert isinstance(b.outline, Polygon | MultiPolygon), (b.name, b.outline.geom_type)
        assert 0 < b.extract_share <= 1


def test_another_bundled_district_builds_with_cells_and_residents(tmp_path: Path) -> None:
    from geo.demand import cell_demand
    from geo.district import build_bundled_district

    d = build_bundled_district("迎泽区")
    assert len(d.cells) > 100 and len(d.positions) > 0
    demand = cell_demand(d)
    assert demand["population"].sum() == pytest.approx(1000.0)
    cov = geo.coverage(d.network, d.positions, d.cells)
    assert 0 < cov.covered_cell_share() <= 1
