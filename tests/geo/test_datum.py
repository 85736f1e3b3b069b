"""WGS84 ⇄ GCJ-02 ⇄ BD-09 against published pairs, and the district outlines against OSM."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import data
import geo
from geo.datum import (
    Crs,
    from_wgs84,
    gcj02_to_wgs84,
    gcj02_to_wgs84_xy,
    geojson_from_wgs84,
    geometry_from_wgs84,
    geometry_to_wgs84,
    in_china,
    to_wgs84,
)

# Published pairs, (lon, lat) in each datum, from sources independent of prcoords, and how far the
# published digits can be from the exact conversion (degrees; 1e-5° ≈ 1 m).
WGS_GCJ = [
    # Amap's coordinate-convert Web API documentation example
    # (https://lbs.amap.com/api/webservice/guide/api/convert: locations=116.481499,39.990475,
    # coordsys=gps) and the answer Amap's API gives, as recorded in the amapGeocode R package's
    # README (github.com/womeimingzi11/amapGeocode): "116.487585177952,39.991754014757".
    pytest.param((116.481499, 39.990475), (116.487585177952, 39.991754014757), 1e-6,
                 id="amap-docs-example"),
    # googollee/eviltransform, python/test.py, TESTS (shanghai, shenzhen, beijing).
    pytest.param((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597), 1e-6,
                 id="eviltransform-shanghai"),
    pytest.param((113.912316, 22.543847), (113.9171764808363, 22.540796131694766), 1e-6,
                 id="eviltransform-shenzhen"),
    pytest.param((116.377817, 39.911954), (116.38404722455657, 39.91334545536069), 1e-6,
                 id="eviltransform-beijing"),
    # Jun Cai's geoChina R package, man/wgs2gcj.Rd: Beijing railway station "verified by Google
    # Earth", 5 decimals.
    pytest.param((116.42079, 39.90105), (116.42703, 39.90245), 2e-5, id="geochina-beijing-station"),
]
# hujiulong/gcoord, test/fixtures/china-cities.json: the same place in WGS84, GCJ-02 and BD-09
# (BD-09 with Baidu's own Mercator numbers beside it), 7 decimals.
CITIES = [
    pytest.param((112.5425661, 37.870051), (112.5488875, 37.8705943), (112.5552826, 37.8768731),
                 id="gcoord-taiyuan"),
    pytest.param((116.4011517, 39.9028057), (116.4074002, 39.9042136), (116.4137852, 39.9105355),
                 id="gcoord-beijing"),
    pytest.param((113.5741091, 37.8564632), (113.5805265, 37.8569762), (113.587143, 37.8626366),
                 id="gcoord-yangquan"),
]
# geoChina man/bd2gcj.Rd: Beijing railway station in GCJ-02 and BD-09 (5 decimals).
GCJ_BD_STATION = ((116.42703, 39.90245), (116.43351, 39.90851))

#: A street corner in the served part of 小店区, Taiyuan (WGS84).
TAIYUAN = (112.5501, 37.8024)


@pytest.mark.parametrize(("wgs", "gcj", "tol"), WGS_GCJ)
def test_published_wgs84_gcj02_pairs(
    wgs: tuple[float, float], gcj: tuple[float, float], tol: float
) -> None:
    assert from_wgs84(*wgs, crs=Crs.GCJ02) == pytest.approx(gcj, abs=tol)
    assert to_wgs84(*gcj, crs=Crs.GCJ02) == pytest.approx(wgs, abs=tol)


@pytest.mark.parametrize(("wgs", "gcj", "bd"), CITIES)
def test_published_three_datum_triples(
    wgs: tuple[float, float], gcj: tuple[float, float], bd: tuple[float, float]
) -> None:
    # gcoord's own tests hold WGS84 to 4 decimals; these agree to about 0.5 m (5e-6°).
    assert from_wgs84(*wgs, crs="gcj02") == pytest.approx(gcj, abs=1e-5)
    assert to_wgs84(*gcj, crs="gcj02") == pytest.approx(wgs, abs=1e-5)
    assert from_wgs84(*wgs, crs="bd09") == pytest.approx(bd, abs=1e-5)
    assert to_wgs84(*bd, crs="bd09") == pytest.approx(wgs, abs=1e-5)
    # GCJ-02 ⇄ BD-09 is closed-form, without GCJ-02's noise: the digits agree to 1e-7°.
    assert from_wgs84(*to_wgs84(*bd, crs="bd09"), crs="gcj02") == pytest.approx(gcj, abs=2e-7)
    assert from_wgs84(*to_wgs84(*gcj, crs="gcj02"), crs="bd09") == pytest.approx(bd, abs=2e-7)


def test_published_gcj02_bd09_station() -> None:
    (gcj, bd) = GCJ_BD_STATION
    wgs = to_wgs84(*gcj, crs="gcj02")
    assert from_wgs84(*wgs, crs="bd09") == pytest.approx(bd, abs=2e-5)
    assert from_wgs84(*to_wgs84(*bd, crs="bd09"), crs="gcj02") == pytest.approx(gcj, abs=2e-5)


def test_shift_goes_east_and_north_in_taiyuan() -> None:
    lon, lat = TAIYUAN
    glon, glat = from_wgs84(lon, lat, crs="gcj02")
    # GCJ-02 lies ≈ +0.0063° east and ≈ +0.0005° north of WGS84 here (≈ 560 m).
    assert glon - lon == pytest.approx(0.0063, abs=3e-4)
    assert glat - lat == pytest.approx(0.0005, abs=2e-4)
    # ... so reading GCJ-02 back means going west and south.
    wlon, wlat = to_wgs84(lon, lat, crs="gcj02")
    assert lon - wlon == pytest.approx(0.0063, abs=3e-4)
    assert lat - wlat == pytest.approx(0.0005, abs=2e-4)
    # BD-09 adds Baidu's own ≈ +0.0065°, +0.006° on top of GCJ-02.
    blon, blat = from_wgs84(lon, lat, crs="bd09")
    assert blon - glon == pytest.approx(0.0065, abs=5e-4)
    assert blat - glat == pytest.approx(0.006, abs=7e-4)


@pytest.mark.parametrize("crs", [Crs.GCJ02, Crs.BD09])
def test_round_trips_over_china(crs: Crs) -> None:
    rng = np.random.default_rng(20240501)
    lon, lat = rng.uniform(74, 134, 2000), rng.uniform(19, 53, 2000)
    x, y = from_wgs84(lon, lat, crs=crs)
    assert np.hypot(x - lon, y - lat).min() > 1e-4  # it did move every point (> 10 m)
    back_lon, back_lat = to_wgs84(x, y, crs=crs)
    assert np.abs(back_lon - lon).max() < 1e-6 and np.abs(back_lat - lat).max() < 1e-6
    # and the other way round: a position read in crs, converted, converted back
    w_lon, w_lat = to_wgs84(lon, lat, crs=crs)
    again_lon, again_lat = from_wgs84(w_lon, w_lat, crs=crs)
    assert np.abs(again_lon - lon).max() < 1e-6 and np.abs(again_lat - lat).max() < 1e-6


def test_arrays_match_scalars_and_keep_their_shape() -> None:
    lon = np.array([[112.55, 112.56], [116.40, 121.47]])
    lat = np.array([[37.80, 37.81], [39.90, 31.23]])
    for crs in Crs:
        x, y = to_wgs84(lon, lat, crs=crs)
        assert x.shape == lon.shape and y.shape == lat.shape
        for i in np.ndindex(lon.shape):
            assert (x[i], y[i]) == to_wgs84(float(lon[i]), float(lat[i]), crs=crs)
    # scalars come back as plain floats; WGS84 is left alone
    assert to_wgs84(112.55, 37.8, crs="wgs84") == (112.55, 37.8)
    assert all(type(v) is float for v in from_wgs84(np.float64(112.55), 37.8, crs="gcj02"))


@pytest.mark.parametrize("place", [(-0.1276, 51.5072), (-74.006, 40.7128), (151.2093, -33.8688),
                                   (139.6917, 35.6895)])
def test_outside_china_gcj02_is_wgs84(place: tuple[float, float]) -> None:
    # pytest turns warnings into errors: prcoords warns on each such point unless guarded, and its
    # iterative inverse would move them.
    assert not in_china(*place)
    assert from_wgs84(*place, crs="gcj02") == place
    assert to_wgs84(*place, crs="gcj02") == place
    lon, lat = to_wgs84(np.array([place[0]]), np.array([place[1]]), crs="gcj02")
    assert (lon[0], lat[0]) == place
    # BD-09 reshapes (WGS84 =) GCJ-02 everywhere, and undoes it exactly.
    assert to_wgs84(*from_wgs84(*place, crs="bd09"), crs="bd09") == pytest.approx(place, abs=1e-6)


def test_crs_vocabulary() -> None:
    assert [c.value for c in Crs] == ["wgs84", "gcj02", "bd09"]
    assert Crs("gcj02") is Crs.GCJ02 and Crs.BD09 == "bd09"
    with pytest.raises(ValueError, match="mars"):
        to_wgs84(112.55, 37.8, crs="mars")


def test_outline_conversion_goes_the_right_way() -> None:
    wgs, gcj = (112.5425661, 37.870051), (112.5488875, 37.8705943)  # gcoord's 太原市 pair
    ring = shapely.Polygon([gcj, (gcj[0] + 0.01, gcj[1]), (gcj[0], gcj[1] + 0.01)])
    moved = gcj02_to_wgs84(ring)
    assert shapely.get_coordinates(moved)[0] == pytest.approx(wgs, abs=1e-5)
    assert gcj02_to_wgs84_xy(*gcj) == pytest.approx(wgs, abs=1e-5)
    # The wrong way would land about 1.1 km from the truth (twice the ≈ 560 m offset).
    wrong = shapely.get_coordinates(geometry_from_wgs84(ring, crs="gcj02"))[0]
    metres = gpd.GeoSeries([shapely.Point(wrong), shapely.Point(wgs)], crs=4326).to_crs(32649)
    assert metres.iloc[0].distance(metres.iloc[1]) == pytest.approx(1120, abs=60)
    # geometries round-trip like points
    back = geometry_to_wgs84(geometry_from_wgs84(moved, crs="bd09"), crs="bd09")
    assert shapely.hausdorff_distance(back, moved) < 1e-6


# Pairs of 太原 districts whose shared boundary runs along the Fen River (汾河), which OSM maps.
FEN_BORDERS = [("迎泽区", "万柏林区"), ("小店区", "晋源区"), ("杏花岭区", "万柏林区")]


@pytest.fixture(scope="module")
def fen_river_m() -> shapely.Geometry:
    lines = data.read_taiyuan_lines()
    fen = lines[(lines["name"] == "汾河") & (lines["waterway"] == "river")]
    assert len(fen) >= 5
    return shapely.union_all(fen.to_crs(32649).geometry.to_numpy())  # UTM 49N: metres


@pytest.mark.parametrize(("a", "b"), FEN_BORDERS)
def test_converted_outlines_follow_the_fen_river(
    a: str, b: str, fen_river_m: shapely.Geometry
) -> None:
    """Real data: the GCJ-02 outlines, converted, put the river border on OSM's river."""
    outlines = data.read_district_outlines_gcj02("taiyuan").set_index("name").geometry
    border = outlines[a].boundary.intersection(outlines[b].boundary)
    lat_min, lat_max = shapely.bounds(
        gpd.GeoSeries([fen_river_m], crs=32649).to_crs(4326).iloc[0])[[1, 3]]

    def median_m(geom: shapely.Geometry) -> float:
        xy = shapely.get_coordinates(geom)
        xy = xy[(xy[:, 1] > lat_min) & (xy[:, 1] < lat_max)]  # where the extract maps the river
        assert len(xy) >= 10
        pts = gpd.GeoSeries(shapely.points(xy), crs=4326).to_crs(32649)
        return float(np.median(pts.distance(fen_river_m)))

    assert median_m(gcj02_to_wgs84(border)) < 100  # outline vertices are quantised to ~90 m
    assert median_m(border) > 400  # GCJ-02 numbers read as WGS84: ≈ 560 m off
    assert median_m(geometry_from_wgs84(border, crs="gcj02")) > 900  # converted the wrong way


def test_built_district_outline_is_the_converted_one(district: geo.District) -> None:
    raw = data.read_district_outlines_gcj02("taiyuan").set_index("name").geometry[district.name]
    assert shapely.hausdorff_distance(district.outline, gcj02_to_wgs84(raw)) < 1e-7
    assert shapely.hausdorff_distance(district.outline, raw) > 0.005


def test_geojson_answers_move_every_coordinate() -> None:
    lon, lat = TAIYUAN
    answer = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat, 780.0]},
             "properties": {"lon": lon, "lat": lat, "walk_m": 12.5, "rank": 1, "demo": True}},
            {"type": "Feature",
             "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.01, lat]]},
             "properties": {"name": "路线"}},
            {"type": "Feature",
             "geometry": {"type": "Polygon", "coordinates": [
                 [[lon, lat], [lon + 0.01, lat], [lon, lat + 0.01], [lon, lat]]]},
             "properties": {}},
        ],
        "properties": {"origin": {"lon": lon, "lat": lat}, "count": 3, "lat": "37.8"},
    }
    assert geojson_from_wgs84(answer, crs="wgs84") is answer
    out = geojson_from_wgs84(answer, crs="gcj02")
    g = from_wgs84(lon, lat, crs="gcj02")
    point = out["features"][0]
    assert point["geometry"]["coordinates"] == [round(g[0], 6), round(g[1], 6), 780.0]
    assert (point["properties"]["lon"], point["properties"]["lat"]) == (
        round(g[0], 6), round(g[1], 6))
    assert point["properties"]["walk_m"] == 12.5 and point["properties"]["demo"] is True
    line = out["features"][1]["geometry"]["coordinates"]
    assert line[0] == [round(g[0], 6), round(g[1], 6)]
    assert line[1] == pytest.approx(list(from_wgs84(lon + 0.01, lat, crs="gcj02")), abs=1e-6)
    ring = out["features"][2]["geometry"]["coordinates"][0]
    assert len(ring) == 4 and ring[0] == ring[-1] == line[0]
    assert out["properties"]["origin"] == {"lon": round(g[0], 6), "lat": round(g[1], 6)}
    assert out["properties"]["lat"] == "37.8" and out["properties"]["count"] == 3
    # the input is left untouched
    assert answer["features"][0]["geometry"]["coordinates"] == [lon, lat, 780.0]
