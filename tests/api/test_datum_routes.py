"""Datums at the edge: positions in GCJ-02 or BD-09 in, answers in any of the three out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import geo
from api.services.accounts import create_user
from api.storage.session import session_maker
from geo.datum import from_wgs84
from tests.api.conftest import running_app

#: A street corner in the served part of 小店区 (WGS84): 119 m from the practice center.
HOME = (112.5501, 37.8024)
#: The same spot as Amap, Tencent or WeChat give it (GCJ-02), and as Baidu does (BD-09).
HOME_GCJ = from_wgs84(*HOME, crs="gcj02")
HOME_BD = from_wgs84(*HOME, crs="bd09")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('datum-db') / 'practice.db'}"


@pytest.fixture(scope="module")
def client(cache_dir: Path, db_url: str) -> Iterator[TestClient]:
    """The real app (lifespan included) on a fresh SQLite database of its own."""
    with running_app(db_url) as c:
        yield c


@pytest.fixture(scope="module")
def resident(client: TestClient, db_url: str) -> dict[str, str]:
    with session_maker(db_url)() as s:
        _, token = create_user(s, role="resident", name="张阿姨")
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def problem(r: Any, code: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == 422
    return body


def walks(fc: dict[str, Any]) -> list[tuple[str, float]]:
    return [(f["properties"]["site_id"], f["properties"]["walk_m"]) for f in fc["features"]]


def test_nearest_reads_gcj02_and_bd09_as_the_same_spot(client: TestClient) -> None:
    base: dict[str, Any] = {"limit": 3}
    wgs = client.get("/nearest", params={**base, "lon": HOME[0], "lat": HOME[1]}).json()
    gcj = client.get("/nearest", params={**base, "lon": HOME_GCJ[0], "lat": HOME_GCJ[1],
                                         "crs": "gcj02"}).json()
    bd = client.get("/nearest", params={**base, "lon": HOME_BD[0], "lat": HOME_BD[1],
                                        "crs": "bd09"}).json()
    explicit = client.get("/nearest", params={**base, "lon": HOME[0], "lat": HOME[1],
                                              "crs": "wgs84"}).json()
    assert explicit == wgs
    for other in (gcj, bd):
        assert [s for s, _ in walks(other)] == [s for s, _ in walks(wgs)]
        assert [w for _, w in walks(other)] == pytest.approx([w for _, w in walks(wgs)], abs=0.2)
        assert other["properties"]["origin"] == pytest.approx(wgs["properties"]["origin"],
                                                              abs=1e-6)
        for f, g in zip(other["features"], wgs["features"], strict=True):
            a, b = np.array(f["geometry"]["coordinates"]), np.array(g["geometry"]["coordinates"])
            assert a.shape == b.shape and np.abs(a - b).max() <= 2e-6
    # The practice center is a 2-minute walk; the GCJ-02 numbers read as WGS84 put the resident
    # ≈ 560 m east, a 15-minute walk away.
    assert walks(wgs)[0] == ("小店区-C001", pytest.approx(119, abs=5))
    misread = client.get("/nearest", params={**base, "lon": HOME_GCJ[0], "lat": HOME_GCJ[1]})
    assert walks(misread.json())[0][1] > 800


def test_nearest_answers_in_gcj02(client: TestClient) -> None:
    params: dict[str, Any] = {"lon": HOME_GCJ[0], "lat": HOME_GCJ[1], "crs": "gcj02", "limit": 2}
    wgs = client.get("/nearest", params=params).json()
    gcj = client.get("/nearest", params={**params, "out_crs": "gcj02"}).json()
    # the origin comes back as it was given
    assert gcj["properties"]["origin"] == pytest.approx(
        {"lon": HOME_GCJ[0], "lat": HOME_GCJ[1]}, abs=1e-6)
    assert walks(gcj) == walks(wgs)
    for f, g in zip(gcj["features"], wgs["features"], strict=True):
        moved = np.array(f["geometry"]["coordinates"])
        route = np.array(g["geometry"]["coordinates"])
        assert moved[0] == pytest.approx(list(HOME_GCJ), abs=1e-6)
        shift = moved - route  # every vertex of the route, east and a little north
        assert np.all((shift[:, 0] > 0.0060) & (shift[:, 0] < 0.0066))
        assert np.all((shift[:, 1] > 0.0003) & (shift[:, 1] < 0.0008))
        x, y = from_wgs84(route[:, 0], route[:, 1], crs="gcj02")
        assert np.abs(moved - np.column_stack([x, y])).max() <= 1e-6
        p, q = f["properties"], g["properties"]
        assert (p["lon"], p["lat"]) == pytest.approx(from_wgs84(q["lon"], q["lat"], crs="gcj02"),
                                                     abs=1e-6)


def test_sites_in_gcj02_and_bd09(client: TestClient, district: geo.District) -> None:
    wgs = client.get("/sites").json()
    gcj = client.get("/sites", params={"out_crs": "gcj02"}).json()
    bd = client.get("/sites", params={"out_crs": "bd09"}).json()
    assert len(wgs["features"]) == len(gcj["features"]) == len(bd["features"])
    assert len(wgs["features"]) == len(district.positions)
    xy = np.array([f["geometry"]["coordinates"] for f in wgs["features"]])
    xy_gcj = np.array([f["geometry"]["coordinates"] for f in gcj["features"]])
    xy_bd = np.array([f["geometry"]["coordinates"] for f in bd["features"]])
    assert np.all((xy_gcj[:, 0] - xy[:, 0] > 0.0060) & (xy_gcj[:, 0] - xy[:, 0] < 0.0066))
    assert np.all((xy_gcj[:, 1] - xy[:, 1] > 0.0003) & (xy_gcj[:, 1] - xy[:, 1] < 0.0008))
    assert np.all(xy_bd[:, 0] - xy_gcj[:, 0] > 0.006) and np.all(xy_bd[:, 1] - xy_gcj[:, 1] > 0.005)
    x, y = from_wgs84(xy[:, 0], xy[:, 1], crs="gcj02")
    assert np.abs(xy_gcj - np.column_stack([x, y])).max() <= 1e-6
    assert [f["properties"] for f in gcj["features"]] == [f["properties"] for f in wgs["features"]]


def test_teams_nearest_reads_and_answers_any_datum(client: TestClient) -> None:
    base: dict[str, Any] = {"category": "elderly", "limit": 5}
    wgs = client.get("/teams/nearest", params={**base, "lon": HOME[0], "lat": HOME[1]}).json()
    gcj = client.get("/teams/nearest", params={
        **base, "lon": HOME_GCJ[0], "lat": HOME_GCJ[1], "crs": "gcj02"}).json()
    misread = client.get("/teams/nearest", params={
        **base, "lon": HOME_GCJ[0], "lat": HOME_GCJ[1]}).json()
    assert [t["team_id"] for t in gcj["teams"]] == [t["team_id"] for t in wgs["teams"]]
    assert [t["walk_m"] for t in gcj["teams"]] == pytest.approx(
        [t["walk_m"] for t in wgs["teams"]], abs=0.2)
    assert (gcj["lon"], gcj["lat"]) == pytest.approx(HOME, abs=1e-6)  # answered in WGS84
    assert misread["teams"][0]["walk_m"] - wgs["teams"][0]["walk_m"] > 300
    back = client.get("/teams/nearest", params={
        **base, "lon": HOME_GCJ[0], "lat": HOME_GCJ[1], "crs": "gcj02", "out_crs": "gcj02"}).json()
    assert (back["lon"], back["lat"]) == pytest.approx(HOME_GCJ, abs=1e-6)
    assert back["teams"] == gcj["teams"]


def test_requests_store_wgs84_and_answer_in_any_datum(
    client: TestClient, resident: dict[str, str]
) -> None:
    order = {"lon": HOME_GCJ[0], "lat": HOME_GCJ[1], "crs": "gcj02", "category": "elderly",
             "description": "帮忙代购药品", "contact": "13812341234"}
    headers = {**resident, "Idempotency-Key": "datum-order-1"}
    r = client.post("/requests", json=order, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["lon"], created["lat"]) == pytest.approx(HOME, abs=1e-6)  # stored WGS84
    assert "crs" not in created
    rid = created["id"]
    # A retry replays the stored answer, given in the datum this retry asks for.
    again = client.post("/requests", json=order, headers=headers, params={"out_crs": "gcj02"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == rid
    assert (again.json()["lon"], again.json()["lat"]) == pytest.approx(HOME_GCJ, abs=1e-6)

    shown = client.get(f"/requests/{rid}", params={"out_crs": "gcj02"}, headers=resident).json()
    assert (shown["lon"], shown["lat"]) == pytest.approx(HOME_GCJ, abs=1e-6)
    shown = client.get(f"/requests/{rid}", params={"out_crs": "bd09"}, headers=resident).json()
    assert (shown["lon"], shown["lat"]) == pytest.approx(HOME_BD, abs=1e-6)

    # A small box (±50 m) around the spot, drawn on an Amap map.
    d = 0.0005
    box = f"{HOME_GCJ[0] - d},{HOME_GCJ[1] - d},{HOME_GCJ[0] + d},{HOME_GCJ[1] + d}"
    found = client.get("/requests", params={"bbox": box, "crs": "gcj02", "out_crs": "gcj02"},
                       headers=resident).json()
    assert [i["id"] for i in found["items"]] == [rid]
    assert (found["items"][0]["lon"], found["items"][0]["lat"]) == pytest.approx(HOME_GCJ,
                                                                                 abs=1e-6)
    # The same numbers read as WGS84 are a box ≈ 560 m east: nothing there.
    assert client.get("/requests", params={"bbox": box}, headers=resident).json()["items"] == []
    wgs_box = f"{HOME[0] - d},{HOME[1] - d},{HOME[0] + d},{HOME[1] + d}"
    found = client.get("/requests", params={"bbox": wgs_box}, headers=resident).json()
    assert [i["id"] for i in found["items"]] == [rid]

    # GCJ-02 numbers sent without crs are taken as WGS84 and stored 560 m east.
    misread = client.post("/requests", json={**order, "crs": "wgs84"}, headers=resident).json()
    assert (misread["lon"], misread["lat"]) == pytest.approx(HOME_GCJ, abs=1e-9)

    r = client.post(f"/requests/{rid}/cancel", params={"out_crs": "gcj02"}, headers=resident)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert (r.json()["lon"], r.json()["lat"]) == pytest.approx(HOME_GCJ, abs=1e-6)


@pytest.mark.parametrize(("method", "path", "params"), [
    ("GET", "/nearest", {"lon": HOME[0], "lat": HOME[1], "crs": "mars"}),
    ("GET", "/nearest", {"lon": HOME[0], "lat": HOME[1], "crs": "GCJ-02"}),
    ("GET", "/nearest", {"lon": HOME[0], "lat": HOME[1], "out_crs": "epsg:4326"}),
    ("GET", "/teams/nearest", {"lon": HOME[0], "lat": HOME[1], "category": "elderly",
                               "crs": "baidu"}),
    ("GET", "/sites", {"out_crs": "gcj"}),
    ("GET", "/requests", {"bbox": "112.5,37.8,112.6,37.9", "crs": "amap"}),
])
def test_unknown_crs_is_a_problem(
    client: TestClient, resident: dict[str, str], method: str, path: str, params: dict[str, Any]
) -> None:
    body = problem(client.request(method, path, params=params, headers=resident),
                   "invalid_request")
    assert "wgs84" in body["detail"] and "gcj02" in body["detail"]


def test_unknown_crs_in_an_order_is_a_problem(
    client: TestClient, resident: dict[str, str]
) -> None:
    order = {"lon": HOME[0], "lat": HOME[1], "crs": "mars", "category": "elderly",
             "description": "帮忙代购药品", "contact": "13812341234"}
    body = problem(client.post("/requests", json=order, headers=resident), "invalid_request")
    assert "crs" in body["detail"]
