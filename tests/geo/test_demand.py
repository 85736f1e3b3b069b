"""Residents per grid cell: the Taiyuan index, Haidian WorldPop counts and user files."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import data
import geo
from geo._errors import DemandFileError
from geo.demand import (
    DEFAULT_INDEX_TOTAL,
    METHOD_ESTIMATE,
    METHOD_WORLDPOP,
    cell_demand,
    read_demand_file,
)
from geo.district import build_district_from_xml


@pytest.fixture(scope="module")
def taiyuan(district: geo.District) -> gpd.GeoDataFrame:
    return cell_demand(district)


@pytest.fixture(scope="module")
def haidian(osm_xml: Path) -> geo.District:
    return build_district_from_xml(osm_xml, "海淀区-学清")


def test_taiyuan_is_a_labelled_index(district: geo.District, taiyuan: gpd.GeoDataFrame) -> None:
    assert taiyuan["population"].sum() == pytest.approx(DEFAULT_INDEX_TOTAL)
    assert (taiyuan["population_method"] == METHOD_ESTIMATE).all()
    assert taiyuan["population_method"].iloc[0].startswith("estimate")
    assert taiyuan["population_unit"].str.contains("not a head count").all()
    assert list(taiyuan.index) == list(district.cells["cell_id"])
    assert taiyuan.index.name == "cell_id"
    assert (taiyuan["population"] >= 0).all()
    assert "5% of its area" in taiyuan.attrs["population_note"]  # the floor, stated
    assert cell_demand(district, index_total=100.0)["population"].sum() == pytest.approx(100.0)


def test_taiyuan_weights_follow_housing(district: geo.District,
                                        taiyuan: gpd.GeoDataFrame) -> None:
    crs = district.meta["crs_metric"]
    cells = district.cells.geometry.to_crs(crs).to_numpy()
    streets = district.edges.geometry.to_crs(crs).to_numpy()
    has_street = np.zeros(len(cells), bool)
    has_street[shapely.STRtree(streets).query(cells, predicate="intersects")[0]] = True
    pop = taiyuan["population"].to_numpy()
    assert (pop[has_street] > 0).all()  # the floor
    landuse = district.places[district.places["kind"] == "residential"].geometry.to_crs(crs)
    lu = shapely.area(shapely.intersection(cells, shapely.union_all(landuse.to_numpy())))
    # Cells half covered by residential compounds weigh more than any street-only cell.
    housing = lu > 0.5 * shapely.area(cells)
    assert housing.sum() > 5
    floor_only = has_street & (lu == 0)
    assert pop[housing].min() > np.median(pop[floor_only])
    assert pop.max() > 5 * np.median(pop[floor_only])


def test_haidian_worldpop(haidian: geo.District) -> None:
    dm = cell_demand(haidian)
    assert (dm["population_method"] == METHOD_WORLDPOP).all()
    towns = data.read_beijing_townships()
    touched = towns[towns.intersects(haidian.cells.union_all())]
    assert "学院路街道" in set(touched["乡"])
    assert 0 < dm["population"].sum() <= touched["population"].sum()
    kept = pd.DataFrame(dm.attrs["townships"])
    assert (kept["kept"] <= kept["population"] + 1e-9).all()
    assert dm["population"].sum() == pytest.approx(kept["kept"].sum())
    # 学院路 is mostly inside the extract's hull, the others only at the edge.
    share = kept.set_index("township")["area_share_inside"]
    assert share["学院路街道"] > 0.3
    assert (share.drop("学院路街道") < 0.1).all()


# ------------------------------------------------------------------ user files


def _centres(district: geo.District, n: int = 5) -> pd.DataFrame:
    return district.cells.iloc[:n][["cell_id", "lon", "lat"]].reset_index(drop=True)


def test_csv_points(tmp_path: Path, district: geo.District) -> None:
    c = _centres(district)
    path = tmp_path / "people.csv"
    pd.DataFrame({"Lng": c["lon"], "Lat": c["lat"], "count": [1, 2, 3, 4, 5]}).to_csv(path,
                                                                                 index=False)
    dm = cell_demand(district, demand_file=path)
    np.testing.assert_allclose(dm.loc[c["cell_id"], "population"], [1, 2, 3, 4, 5])
    assert dm["population"].sum() == 15
    assert dm["population_method"].iloc[0].startswith("user file people.csv")
    assert dm.attrs["population_outside"] == 0


def test_geojson_polygons_and_named_column(tmp_path: Path, district: geo.District) -> None:
    cells = district.cells.iloc[:3]
    far = shapely.box(100.0, 30.0, 100.01, 30.01)  # outside every cell
    gdf = gpd.GeoDataFrame({"residents": [100.0, 50.0, 7.0, 9.0]},
                           geometry=[*cells.geometry, far], crs="EPSG:4326")
    path = tmp_path / "blocks.geojson"
    gdf.to_file(path, driver="GeoJSON")
    dm = cell_demand(district, demand_file=path, count_column="residents")
    np.testing.assert_allclose(dm.loc[cells["cell_id"], "population"], [100, 50, 7], rtol=1e-6)
    assert dm.attrs["population_outside"] == pytest.approx(9.0, rel=1e-6)


def test_gpkg_points(tmp_path: Path, district: geo.District) -> None:
    c = _centres(district, 2)
    gdf = gpd.GeoDataFrame({"population": [3, 4]},
                           geometry=gpd.points_from_xy(c["lon"], c["lat"]), crs="EPSG:4326")
    path = tmp_path / "pts.gpkg"
    gdf.to_crs(district.meta["crs_metric"]).to_file(path, driver="GPKG")
    read = read_demand_file(path)
    assert read.crs.to_epsg() == 4326 and list(read["population"]) == [3, 4]
    dm = cell_demand(district, demand_file=path)
    np.testing.assert_allclose(dm.loc[c["cell_id"], "population"], [3, 4])


def test_bad_files(tmp_path: Path) -> None:
    no_geom = tmp_path / "no_geometry.geojson"
    no_geom.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"population": 5}, "geometry": None}]}))
    with pytest.raises(DemandFileError, match=r"no_geometry\.geojson: no geometry"):
        read_demand_file(no_geom)

    no_xy = tmp_path / "no_xy.csv"
    no_xy.write_text("name,population\na,1\n")
    with pytest.raises(DemandFileError, match=r"no_xy\.csv: no geometry.*lon"):
        read_demand_file(no_xy)

    no_count = tmp_path / "no_count.csv"
    no_count.write_text("lon,lat,people\n112.55,37.80,1\n")
    with pytest.raises(DemandFileError,
                       match=r"no_count\.csv: no count column 'population' or 'count'.*people"):
        read_demand_file(no_count)
    with pytest.raises(DemandFileError, match=r"no_count\.csv: no count column 'residents'"):
        read_demand_file(no_count, count_column="residents")

    text = tmp_path / "text.csv"
    text.write_text("lon,lat,population\n112.55,37.80,many\n")
    with pytest.raises(DemandFileError, match=r"text\.csv: column 'population' has non-numeric"):
        read_demand_file(text)

    metres = tmp_path / "metres.csv"
    metres.write_text("x,y,population\n500000,4180000,1\n")
    with pytest.raises(DemandFileError, match=r"metres\.csv: columns 'x'/'y' are not WGS84"):
        read_demand_file(metres)

    lines = tmp_path / "lines.geojson"
    gpd.GeoDataFrame({"population": [1]}, geometry=[shapely.LineString([(0, 0), (1, 1)])],
                     crs="EPSG:4326").to_file(lines, driver="GeoJSON")
    with pytest.raises(DemandFileError, match=r"lines\.geojson: unsupported geometry"):
        read_demand_file(lines)

    with pytest.raises(DemandFileError, match=r"missing\.csv: no such file"):
        read_demand_file(tmp_path / "missing.csv")
    odd = tmp_path / "people.xlsx"
    odd.write_bytes(b"")
    with pytest.raises(DemandFileError, match=r"people\.xlsx: unsupported file type"):
        read_demand_file(odd)
    assert issubclass(DemandFileError, ValueError)
