"""Health, sites and coverage routes through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import geo


@pytest.fixture(scope="module")
def client(cache_dir: Path) -> Iterator[TestClient]:
    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        yield c


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_sites_geojson_has_every_position(client: TestClient, district: geo.District) -> None:
    r = client.get("/sites")
    assert r.status_code == 200
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == len(district.positions)
    props = fc["features"][0]["properties"]
    assert props["demo"] is True and props["osm_id"]
    lon, lat = fc["features"][0]["geometry"]["coordinates"]
    assert 112 < lon < 113 and 37 < lat < 38  # WGS84 lon/lat order


def test_sites_filter_by_category_and_unknown_category(client: TestClient) -> None:
    all_n = len(client.get("/sites").json()["features"])
    legal = client.get("/sites", params={"category": "legal"}).json()["features"]
    assert 0 < len(legal) < all_n
    assert all("legal" in f["properties"]["categories"] for f in legal)
    r = client.get("/sites", params={"category": "karaoke"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "unknown_category" and "theory" in body["detail"]


def test_coverage_route_matches_library(client: TestClient, district: geo.District) -> None:
    r = client.get("/coverage", params={"minutes": 15})
    assert r.status_code == 200
    body = r.json()
    cov = geo.coverage(district.network, district.positions, district.cells,
                       inside=district.nodes["inside"].to_numpy(),
                       cell_points=geo.resident_points(district))
    assert body["covered_cell_share"] == pytest.approx(cov.covered_cell_share(), abs=1e-4)
    assert body["extract_share"] < 0.5


def test_unknown_district_is_problem_404(client: TestClient) -> None:
    r = client.get("/coverage", params={"district": "不存在区"})
    assert r.status_code == 404
    assert r.json()["code"] == "unknown_district"


def test_sites_by_level_and_unknown_level(client: TestClient, district: geo.District) -> None:
    stations = client.get("/sites", params={"level": "community"}).json()["features"]
    assert len(stations) == int((district.positions.level == "community").sum()) > 0
    r = client.get("/sites", params={"level": "palace"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_level"
    assert "community" in r.json()["detail"]


def test_large_geojson_is_compressed_and_small_answers_are_not(client: TestClient) -> None:
    big = client.get("/coverage/cells", headers={"Accept-Encoding": "gzip"})
    assert big.status_code == 200 and big.headers.get("content-encoding") == "gzip"
    assert len(big.json()["features"]) > 0  # decoded transparently
    small = client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
