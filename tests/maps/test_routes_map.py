"""The map routes through the real app: page, basemap, sites, cells, nearest and assets."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import geo
from maps import assets
from tests.maps.helpers import skip_or_fail


@pytest.fixture(scope="module")
def client(cache_dir: Path) -> Iterator[TestClient]:
    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/map", "/map?district=小店区"])
def test_page_is_served(client: TestClient, path: str) -> None:
    if assets.missing_assets():
        skip_or_fail("node_modules absent: run `npm ci`")
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text


def test_unknown_district_is_a_problem(client: TestClient) -> None:
    r = client.get("/map", params={"district": "不存在区"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "unknown_district"


def test_basemap_is_gzipped_and_cacheable(client: TestClient) -> None:
    r = client.get("/map/basemap", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    layers = r.json()  # httpx decodes
    assert set(layers) >= {"streets", "water", "green", "buildings", "attribution"}
    etag = r.headers["etag"]
    again = client.get("/map/basemap", headers={"If-None-Match": etag})
    assert again.status_code == 304
    plain = client.get("/map/basemap", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(gzip.compress(plain.content)) < len(plain.content) / 3


def test_map_sites_match_sites(client: TestClient, district: geo.District) -> None:
    sites = client.get("/sites").json()["features"]
    mapped = client.get("/map/sites").json()["features"]
    assert len(mapped) == len(sites) == len(district.positions)
    assert [f["properties"]["site_id"] for f in mapped] == [
        f["properties"]["site_id"] for f in sites]
    p = mapped[0]["properties"]
    assert p["level"] == "center" and len(p["category_names"]) == len(p["categories"])
    assert p["category_names"][0] == "理论政策宣讲"
    assert p["team_names"] and all(n.endswith("志愿服务队") for n in p["team_names"])
    assert "opening_hours" in p


def test_coverage_cells(client: TestClient, district: geo.District) -> None:
    r = client.get("/coverage/cells")
    assert r.status_code == 200
    fc = r.json()
    assert len(fc["features"]) == len(district.cells)
    props = fc["features"][0]["properties"]
    assert {"cell_id", "walk_minutes", "nearest_site", "nearest_name", "covered"} <= set(props)
    share = fc["properties"]["covered_cell_share"]
    assert share == pytest.approx(client.get("/coverage").json()["covered_cell_share"])
    assert client.get("/coverage/cells", params={"minutes": 0}).status_code == 422


def test_nearest_route(client: TestClient) -> None:
    r = client.get("/nearest", params={"lon": 112.565, "lat": 37.805, "limit": 2})
    assert r.status_code == 200
    fc = r.json()
    assert len(fc["features"]) == 2
    f = fc["features"][0]
    assert f["geometry"]["type"] == "LineString"
    assert f["properties"]["minutes"] >= 1 and f["properties"]["name"]


@pytest.mark.parametrize(
    ("params", "code"),
    [({"lon": 113.3, "lat": 37.8}, "out_of_area"),
     ({"lon": 112.56, "lat": 37.8, "category": "karaoke"}, "unknown_category"),
     ({"lon": 200, "lat": 37.8}, "invalid_request"),
     ({"lat": 37.8}, "invalid_request")],
)
def test_nearest_errors(client: TestClient, params: dict[str, object], code: str) -> None:
    r = client.get("/nearest", params=params)
    assert r.status_code == 422
    assert r.json()["code"] == code


def test_assets_are_served_and_confined(client: TestClient) -> None:
    r = client.get("/assets/app/practice-map.js")
    assert r.status_code == 200 and "PracticeMap" in r.text
    assert client.get("/assets/app/practice-map.css").status_code == 200
    assert client.get("/assets/leaflet/../package.json").status_code == 404
    assert client.get("/assets/app/../page.py").status_code == 404
    if assets.missing_assets():
        skip_or_fail("node_modules absent: run `npm ci`")
    assert client.get("/assets/leaflet/leaflet.js").status_code == 200
    assert client.get("/assets/leaflet/images/layers.png").status_code == 200
    assert client.get("/assets/leaflet.markercluster/MarkerCluster.css").status_code == 200
