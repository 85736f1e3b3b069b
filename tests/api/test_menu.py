"""The service menu (服务菜单) on the real bundled district, on both databases.

Each line must be the team the dispatcher's own ranking puts first among those that can take
the order, so the menu is checked against ``GET /teams/nearest?eligible_only=true`` and
against changes that move the ranking (a team paused, a new team nearer, a full one).
"""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient

import geo
from api.services.navigation import links
from geo.datum import Crs, from_wgs84
from tests.api.dispatch.helpers import HOME, Actors, new_request
from tests.api.helpers import problem


def menu(c: TestClient, lon: float = HOME[0], lat: float = HOME[1], **q: str) -> dict:
    r = c.get("/services/menu", params={"lon": lon, "lat": lat, **q})
    assert r.status_code == 200, r.text
    return dict(r.json())


def by_category(m: dict) -> dict[str, dict]:
    return {i["category"]: i for i in m["items"]}


def test_every_category_names_the_nearest_team_that_can_take_it(
    client: TestClient, district: geo.District,
) -> None:
    t0 = time.perf_counter()
    m = menu(client)
    elapsed = time.perf_counter() - t0
    assert [i["category"] for i in m["items"]] == [c.code for c in geo.CATEGORIES]
    assert [i["category_zh"] for i in m["items"]] == [c.name for c in geo.CATEGORIES]
    assert m["minutes"] == 15
    seats = district.positions.set_index("site_id")
    available = 0
    for item in m["items"]:
        r = client.get("/teams/nearest", params={"lon": HOME[0], "lat": HOME[1],
                                                 "category": item["category"], "limit": 1,
                                                 "eligible_only": "true"})
        assert r.status_code == 200, r.text
        top = r.json()["teams"]
        if not top:
            assert not item["available"] and item["team_id"] is None
            continue
        available += 1
        assert item["available"]
        assert item["team_id"] == top[0]["team_id"]
        assert item["team_name"] == top[0]["name"]
        assert item["site_name"] == top[0]["site_name"]
        assert item["walk_minutes"] == round(top[0]["walk_minutes"], 1)
        assert item["within_15"] == (item["walk_minutes"] <= 15)
        seat = seats.loc[item["site_id"]].geometry
        assert abs(item["site_lon"] - seat.x) < 1e-6 and abs(item["site_lat"] - seat.y) < 1e-6
    # The demo registry has a team of every category somewhere in the district.
    assert available == len(geo.CATEGORIES)
    # Near the practice center, some categories are within 15 minutes and some are not.
    flags = {i["within_15"] for i in m["items"]}
    assert True in flags
    assert elapsed < 2.0, f"menu took {elapsed:.2f} s"


def test_menu_follows_the_registry_and_the_teams_load(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    before = by_category(menu(client))["elderly"]
    assert before["available"]
    # A new team at the position nearest to HOME becomes the elderly line.
    near = client.get("/nearest", params={"lon": HOME[0], "lat": HOME[1], "limit": 1}).json()
    site = near["features"][0]["properties"]["site_id"]
    team = actors.new_team("elderly", site_id=site, capacity=1)
    now = by_category(menu(client))["elderly"]
    assert now["team_id"] == team and now["site_id"] == site
    assert now["walk_minutes"] <= before["walk_minutes"]
    # Full (its one place taken by an order dispatched to it): the line falls back.
    dsp = actors.dispatcher()
    r = client.post("/requests", headers=actors.resident(), json=new_request("elderly"))
    assert r.status_code == 201, r.text
    r = client.post(f"/requests/{r.json()['id']}/dispatch", headers=dsp, json={"team_id": team})
    assert r.status_code == 200, r.text
    assert by_category(menu(client))["elderly"]["team_id"] != team
    # No team at all: every line says so.
    actors.set_demo_teams_active(False)
    try:
        m = menu(client)
        assert all(not i["available"] and i["walk_minutes"] is None and not i["within_15"]
                   for i in m["items"] if i["category"] != "elderly")
    finally:
        actors.set_demo_teams_active(True)


def test_menu_takes_amap_and_baidu_points_and_refuses_points_off_the_streets(
    client: TestClient,
) -> None:
    wgs = menu(client)
    for crs in (Crs.GCJ02, Crs.BD09):
        lon, lat = from_wgs84(*HOME, crs=crs)
        other = menu(client, lon, lat, crs=crs.value)
        assert abs(other["lon"] - HOME[0]) < 1e-5 and abs(other["lat"] - HOME[1]) < 1e-5
        assert [i["team_id"] for i in other["items"]] == [i["team_id"] for i in wgs["items"]]
    # Far from every street of the district: the problem every point input gives.
    problem(client.get("/services/menu", params={"lon": 116.39, "lat": 39.9}), 422,
            "out_of_area")
    r = client.get("/services/menu", params={"lon": 200, "lat": 37.8})
    assert r.status_code == 422
    r = client.get("/services/menu", params={"lon": 112.55})
    assert r.status_code == 422


def test_navigation_links_to_an_order_place(client: TestClient) -> None:
    r = client.get("/services/navigation", params={"lon": HOME[0], "lat": HOME[1],
                                                   "name": "敬老助老服务地点"})
    assert r.status_code == 200, r.text
    assert r.json() == links(HOME[0], HOME[1], name="敬老助老服务地点")
    gcj = from_wgs84(*HOME, crs=Crs.GCJ02)
    assert r.json()["gcj02"] == [round(gcj[0], 6), round(gcj[1], 6)]
    # A point given in GCJ-02 (as Amap reports it) lands on the same links.
    same = client.get("/services/navigation", params={"lon": gcj[0], "lat": gcj[1],
                                                      "crs": "gcj02", "name": "敬老助老服务地点"})
    assert same.json()["amap"] == r.json()["amap"]
    assert client.get("/services/navigation", params={"lon": 181, "lat": 37.8}).status_code == 422
    long_name = {"lon": str(HOME[0]), "lat": str(HOME[1]), "name": "长" * 61}
    assert client.get("/services/navigation", params=long_name).status_code == 422


def test_phone_pages_and_the_check_in_link_are_served_under_the_strict_policy(
    client: TestClient,
) -> None:
    page = client.get("/m/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    html = page.text
    assert "<script>" not in html and re.search(r"\son[a-z]+\s*=", html) is None
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "../assets/leaflet/leaflet.js" in scripts
    own = [s for s in scripts if s.startswith("../assets/web/m/")]
    assert len(own) == 5 and all(re.search(r"\?v=[0-9a-f]{10}$", s) for s in own)
    # What the phone pages share with the workbench loads first, stamped like the rest.
    shared = [i for i, s in enumerate(scripts) if s.startswith("../assets/web/common.js?v=")]
    assert len(shared) == 1 and shared[0] < scripts.index(own[0])
    for src in scripts:
        r = client.get("/" + src.removeprefix("../"))
        assert r.status_code == 200, src
        assert "javascript" in r.headers["content-type"]
    # The QR scanner the check-in page loads on demand is served from node_modules.
    assert client.get("/assets/jsqr/jsQR.js").status_code == 200
    # The check-in QR's link is the same page (it reads activity and code itself).
    link = client.get("/m/checkin", params={"activity": 1, "code": "K7Q2MX"})
    assert link.status_code == 200 and link.text == html
