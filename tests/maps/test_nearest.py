"""离我最近: nearest positions by walking, with routes, agree with the coverage model."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geo
from api.services.nearest import nearest_positions


@pytest.fixture(scope="module")
def probes(district: geo.District) -> pd.DataFrame:
    cells = district.cells.sample(25, random_state=7)
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "lon": cells["lon"].to_numpy(),
                         "lat": cells["lat"].to_numpy()})


def test_nearest_agrees_with_coverage(district: geo.District, probes: pd.DataFrame) -> None:
    # A point asking for its nearest positions starts on its nearest street: coverage of the
    # same points, each on its nearest street only (no snap to others nearby).
    cov = geo.coverage(district.network, district.positions, probes, snap_m=0)
    for row in probes.itertuples():
        fc = nearest_positions(district, row.lon, row.lat, limit=1, max_access_m=5000)
        expected = cov.cells.loc[row.cell_id]
        if not np.isfinite(expected["walk_m"]):
            assert fc["features"] == []
            continue
        props = fc["features"][0]["properties"]
        assert props["site_id"] == expected["nearest_site"]
        assert props["walk_m"] == pytest.approx(expected["walk_m"], abs=0.2)
        assert props["walk_minutes"] == pytest.approx(expected["walk_minutes"], abs=0.06)
        assert props["minutes"] == max(1, int(np.ceil(round(expected["walk_minutes"], 1))))


def test_routes_run_from_the_point_to_the_door(district: geo.District) -> None:
    lon, lat = 112.565, 37.805
    fc = nearest_positions(district, lon, lat, limit=5)
    feats = fc["features"]
    assert [f["properties"]["rank"] for f in feats] == [1, 2, 3, 4, 5]
    walks = [f["properties"]["walk_m"] for f in feats]
    assert walks == sorted(walks)
    crs = district.meta["crs_metric"]
    for f in feats:
        coords = f["geometry"]["coordinates"]
        p = f["properties"]
        assert coords[0] == pytest.approx([lon, lat], abs=1e-6)
        assert coords[-1] == pytest.approx([p["lon"], p["lat"]], abs=1e-6)
        line = gpd.GeoSeries([shapely.LineString(coords)], crs="EPSG:4326").to_crs(crs)
        # the drawn route is the walk that was measured (access legs included)
        assert float(line.length.iloc[0]) == pytest.approx(p["walk_m"], rel=0.01, abs=3)
    assert fc["properties"]["origin_access_m"] >= 0
    assert fc["properties"]["demo"] is True


def test_a_point_on_a_position_walks_its_access_legs(district: geo.District) -> None:
    site = district.positions.iloc[10]
    x, y = site.geometry.x, site.geometry.y
    access = float(district.network.attach(np.array([x]), np.array([y])).access_m[0])
    fc = nearest_positions(district, x, y, limit=len(district.positions))
    own = next(f["properties"] for f in fc["features"]
               if f["properties"]["site_id"] == site["site_id"])
    # out to the street and straight back in; another position on the same street may be nearer
    assert own["walk_m"] == pytest.approx(2 * access, abs=0.2)
    assert fc["features"][0]["properties"]["walk_m"] <= own["walk_m"]
    assert own["minutes"] >= 1


def test_category_filter_and_limit(district: geo.District) -> None:
    fc = nearest_positions(district, 112.565, 37.805, limit=4, category_code="legal")
    assert len(fc["features"]) == 4
    cats = district.positions.set_index("site_id")["categories"]
    for f in fc["features"]:
        assert "legal" in cats[f["properties"]["site_id"]].split(",")
    with pytest.raises(geo.UnknownCategoryError, match="可选"):
        nearest_positions(district, 112.565, 37.805, category_code="karaoke")


def test_far_away_point_is_refused(district: geo.District) -> None:
    with pytest.raises(geo.OutOfAreaError, match="距最近的步行道路"):
        nearest_positions(district, 113.2, 37.805)
