"""Keep the registry current over the API: positions and teams, on SQLite and PostGIS.

An admin opens a position at a real OSM place far from every existing one, then seats a team
there; every answer that reads the registry (sites, coverage, gaps, recommendations, nearest,
the map, team ranking, auto-dispatch) shows it on the next request, without a restart, and in
each worker of a real two-worker uvicorn. Edits need the current ``If-Match``; closing keeps
the history.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

import geo
from api.services.accounts import create_user
from api.storage.models import Position, RegistryChange
from api.storage.registry import bump_version, registry_version
from api.storage.session import session_maker
from geo.datum import from_wgs84
from geo.siting import siting_candidates
from tests.api.dispatch.helpers import Server, new_request, reset

PROBLEM = "application/problem+json"
CJK = re.compile(r"[\u4e00-\u9fff]")
ADMIN_NAME = "名录管理员"


# ------------------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class Place:
    """A real OSM place inside the district that is no position yet."""

    osm_id: str
    name: str
    lon: float
    lat: float
    away_m: float


@pytest.fixture(scope="module")
def far_place(district: geo.District) -> Place:
    """The free place farthest from every position (a candidate of /recommendations)."""
    free = siting_candidates(district)  # inside the outline, osm_id not among the positions
    metric = district.network.crs_metric
    taken = district.positions.geometry.to_crs(metric)
    away = free.geometry.to_crs(metric).apply(lambda p: float(taken.distance(p).min()))
    best = free.loc[away.idxmax()]
    return Place(str(best["osm_id"]), str(best["label"]), float(best["lon"]),
                 float(best["lat"]), float(away.max()))


def user(url: str, role: str, name: str, team_id: str | None = None) -> dict[str, str]:
    with session_maker(url)() as s:
        _, token = create_user(s, role=role, name=name, team_id=team_id)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def restore(url: str, district: geo.District, positions: set[str], last_change: int) -> None:
    """Take out what a test added to the registry, and tell every server it changed."""
    reset(url, district)  # users, requests and the teams tests added
    with session_maker(url)() as s:
        s.execute(delete(Position).where(Position.site_id.not_in(positions)))
        s.execute(delete(RegistryChange).where(RegistryChange.id > last_change))
        bump_version(s, district.name)
        s.commit()


def registry_state(url: str, district: geo.District) -> tuple[set[str], int]:
    with session_maker(url)() as s:
        ids = set(s.scalars(select(Position.site_id)))
        last = s.scalar(select(func.coalesce(func.max(RegistryChange.id), 0)))
    return ids, int(last or 0)


@pytest.fixture
def client(app_client: TestClient, db_url: str,
           district: geo.District) -> Iterator[TestClient]:
    """The app on the backend's database; the registry is put back afterwards."""
    reset(db_url, district)
    ids, last = registry_state(db_url, district)
    yield app_client
    restore(db_url, district, ids, last)


@pytest.fixture
def admin(client: TestClient, db_url: str) -> dict[str, str]:
    return user(db_url, "admin", ADMIN_NAME)


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert CJK.search(body["title"]), body  # zh-CN
    if code != "invalid_request":  # schema errors name the field as pydantic does
        assert CJK.search(body["detail"]), body
    return body


def position_body(place: Place, **extra: Any) -> dict[str, Any]:
    return {"level": "site", "name": f"{place.name}新时代文明实践点", "categories": ["elderly"],
            "lon": place.lon, "lat": place.lat, "osm_id": place.osm_id,
            "address": "小店区测试路 1 号", "opening_hours": "Mo-Fr 09:00-17:00",
            "phone": "0351-1234567", **extra}


def open_position(c: TestClient, admin: dict[str, str], place: Place,
                  **extra: Any) -> httpx.Response:
    r = c.post("/positions", json=position_body(place, **extra), headers=admin)
    assert r.status_code == 201, r.text
    return r


def site_ids(fc: dict[str, Any]) -> list[str]:
    return [f["properties"]["site_id"] for f in fc["features"]]


# ------------------------------------------------------------------ (a) shows everywhere


def test_new_position_and_team_show_in_every_answer_on_the_next_request(
    client: TestClient, admin: dict[str, str], far_place: Place, district: geo.District,
    db_url: str,
) -> None:
    p = far_place
    assert p.away_m > 1000  # beyond a 15-minute walk of every position: a real gap
    sites0 = client.get("/sites").json()
    cov0 = client.get("/coverage").json()
    gaps0 = client.get("/gaps").json()
    recs0 = client.get("/recommendations", params={"add": 50, "method": "greedy"}).json()
    near0 = client.get("/nearest", params={"lon": p.lon, "lat": p.lat, "limit": 1}).json()
    map0 = client.get("/map/sites").json()
    assert p.osm_id in [f["properties"]["osm_id"] for f in recs0["features"]]
    assert len(sites0["features"]) == cov0["sites"] == len(district.positions)

    r = open_position(client, admin, p)
    made = r.json()
    sid = made["site_id"]
    assert sid.startswith(f"{district.name}-P") and sid not in set(district.positions.site_id)
    assert r.headers["location"] == f"/positions/{quote(sid, safe='')}"
    assert r.headers["etag"] == f'"{quote(sid, safe="")}.1"'
    assert made["level"] == "site" and made["categories"] == ["elderly"]
    assert made["category_names"] == ["敬老助老"] and made["active"] is True
    assert made["source"] == "api" and made["demo"] is False and made["osm_id"] == p.osm_id
    assert made["phone"] == "0351-1234567"  # a position's phone is public
    assert made["parent_id"]  # linked to the nearest position a level up
    assert (made["lon"], made["lat"]) == pytest.approx((p.lon, p.lat), abs=1e-9)
    got = client.get(r.headers["location"])  # public, no token
    assert got.status_code == 200 and got.json() == made
    assert got.headers["etag"] == r.headers["etag"]

    sites1 = client.get("/sites").json()
    assert len(sites1["features"]) == len(sites0["features"]) + 1
    assert sid in site_ids(sites1) and sid not in site_ids(sites0)
    cov1 = client.get("/coverage").json()
    assert cov1["sites"] == cov0["sites"] + 1
    assert cov1["sites_by_level"]["site"] == cov0["sites_by_level"]["site"] + 1
    assert cov1["covered_node_share"] > cov0["covered_node_share"]
    assert cov1["covered_cell_share"] >= cov0["covered_cell_share"]
    assert cov1["residents"]["residents_within"] > cov0["residents"]["residents_within"]
    gaps1 = client.get("/gaps").json()
    assert sum(f["properties"]["residents"] for f in gaps1["features"]) < sum(
        f["properties"]["residents"] for f in gaps0["features"])
    recs1 = client.get("/recommendations", params={"add": 50, "method": "greedy"}).json()
    assert p.osm_id not in [f["properties"]["osm_id"] for f in recs1["features"]]
    near1 = client.get("/nearest", params={"lon": p.lon, "lat": p.lat, "limit": 1}).json()
    assert site_ids(near0) != [sid] and site_ids(near1) == [sid]
    map1 = client.get("/map/sites").json()
    assert sid not in site_ids(map0)
    shown = next(f["properties"] for f in map1["features"] if f["properties"]["site_id"] == sid)
    assert shown["category_names"] == ["敬老助老"]
    assert shown["opening_hours"] == "Mo-Fr 09:00-17:00"

    # A team seated there is the nearest elderly team, and auto-dispatch sends it.
    at = {"lon": p.lon, "lat": p.lat, "category": "elderly", "eligible_only": True}
    first0 = client.get("/teams/nearest", params=at).json()["teams"][0]
    t = client.post("/teams", headers=admin, json={
        "name": "金茂敬老志愿服务队", "categories": ["elderly"], "site_id": sid, "capacity": 2,
        "leader_contact": "13812341234"})
    assert t.status_code == 201, t.text
    team = t.json()
    tid = team["team_id"]
    assert t.headers["location"] == f"/teams/{quote(tid, safe='')}" and t.headers["etag"]
    assert team["leader_contact"] == "13812341234" and team["leader_contact_masked"] is False
    public = client.get(t.headers["location"]).json()
    assert public["leader_contact"] == "138****1234" and public["leader_contact_masked"] is True
    resident = user(db_url, "resident", "张阿姨")
    assert client.get(t.headers["location"], headers=resident).json()["leader_contact"] == (
        "138****1234")
    assert client.get(t.headers["location"], headers=admin).json()["leader_contact"] == (
        "13812341234")
    assert tid in next(f["properties"]["teams"] for f in client.get("/sites").json()["features"]
                       if f["properties"]["site_id"] == sid)

    ranked = client.get("/teams/nearest", params=at).json()["teams"]
    assert first0["team_id"] != tid
    assert ranked[0]["team_id"] == tid and ranked[0]["site_id"] == sid
    assert ranked[0]["walk_minutes"] < first0["walk_minutes"]
    rid = client.post("/requests", headers=resident,
                      json=new_request("elderly", lon=p.lon, lat=p.lat)).json()["id"]
    dispatcher = user(db_url, "dispatcher", "调度员")
    sent = client.post(f"/requests/{rid}/dispatch", headers=dispatcher)
    assert sent.status_code == 200, sent.text
    assert sent.json()["team"]["team_id"] == tid


def test_position_in_another_datum_is_stored_in_wgs84(
    client: TestClient, admin: dict[str, str], far_place: Place, district: geo.District
) -> None:
    lon, lat = from_wgs84(far_place.lon, far_place.lat, crs="gcj02")
    assert abs(lon - far_place.lon) > 1e-3  # GCJ-02 is hundreds of metres off here
    r = client.post("/positions", params={"district": district.name}, headers=admin,
                    json=position_body(far_place, lon=lon, lat=lat, crs="gcj02"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["location"] == (f"/positions/{quote(made['site_id'], safe='')}"
                                     f"?district={quote(district.name, safe='')}")
    assert (made["lon"], made["lat"]) == pytest.approx((far_place.lon, far_place.lat), abs=1e-5)
    shown = client.get(r.headers["location"], params={"out_crs": "gcj02"}).json()
    assert (shown["lon"], shown["lat"]) == pytest.approx((lon, lat), abs=1e-5)


# ---------------------------------------------------------------- (b) If-Match and 412


def test_edit_needs_the_current_etag(
    client: TestClient, admin: dict[str, str], far_place: Place, db_url: str,
    district: geo.District,
) -> None:
    r = open_position(client, admin, far_place)
    url, tag1 = r.headers["location"], r.headers["etag"]

    body = problem(client.patch(url, json={"name": "无条件修改"}, headers=admin), 428,
                   "precondition_required")
    assert "If-Match" in body["detail"]

    ok = client.patch(url, json={"name": "金茂实践点", "categories": ["elderly", "health"]},
                      headers={**admin, "If-Match": tag1})
    assert ok.status_code == 200, ok.text
    tag2 = ok.headers["etag"]
    assert tag2 != tag1 and ok.json()["version"] == 2
    assert ok.json()["categories"] == ["health", "elderly"]  # stored in the 8+N order

    with session_maker(db_url)() as s:
        version = registry_version(s, district.name)
    stale = problem(client.patch(url, json={"name": "过期的修改", "phone": "110"},
                                 headers={**admin, "If-Match": tag1}), 412, "precondition_failed")
    assert stale["current_etag"] == tag2
    problem(client.delete(url, headers={**admin, "If-Match": tag1}), 412, "precondition_failed")
    now = client.get(url, headers=admin)
    assert now.headers["etag"] == tag2
    assert now.json()["name"] == "金茂实践点" and now.json()["active"] is True
    assert now.json()["phone"] == "0351-1234567"
    with session_maker(db_url)() as s:
        assert registry_version(s, district.name) == version  # nothing changed
    history = client.get(url + "/history", headers=admin).json()["changes"]
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["changes"]["name"] == [f"{far_place.name}新时代文明实践点", "金茂实践点"]


# ------------------------------------------------------------------ (c) closing, history


def test_delete_closes_and_keeps_the_history(
    client: TestClient, admin: dict[str, str], far_place: Place
) -> None:
    p = far_place
    r = open_position(client, admin, p)
    sid, url = r.json()["site_id"], r.headers["location"]
    team = client.post("/teams", headers=admin, json={
        "name": "敬老队", "categories": ["elderly"], "site_id": sid, "capacity": 1}).json()
    moved = client.patch(url, json={"opening_hours": "Sa-Su 10:00-16:00"},
                         headers={**admin, "If-Match": r.headers["etag"]})
    assert moved.status_code == 200, moved.text
    near = {"lon": p.lon, "lat": p.lat, "limit": 1}
    assert site_ids(client.get("/nearest", params=near).json()) == [sid]

    closed = client.delete(url, headers={**admin, "If-Match": moved.headers["etag"]})
    assert closed.status_code == 200, closed.text
    assert closed.json()["active"] is False and closed.json()["site_id"] == sid
    assert closed.headers["etag"] != moved.headers["etag"]

    assert sid not in site_ids(client.get("/sites").json())
    assert sid not in site_ids(client.get("/map/sites").json())
    assert site_ids(client.get("/nearest", params=near).json()) != [sid]
    ranked = client.get("/teams/nearest", params={
        "lon": p.lon, "lat": p.lat, "category": "elderly", "eligible_only": True}).json()
    assert team["team_id"] not in [t["team_id"] for t in ranked["teams"]]
    problem(client.get(url), 404, "not_found")  # the public sees open positions only
    kept = client.get(url, headers=admin)
    assert kept.status_code == 200 and kept.json()["active"] is False
    assert client.get(f"/teams/{quote(team['team_id'], safe='')}",
                      headers=admin).json()["active"] is False
    again = client.patch(url, json={"name": "复活"}, headers={**admin, "If-Match": "*"})
    problem(again, 422, "invalid_registry_entry")

    history = client.get(url + "/history", headers=admin)
    assert history.status_code == 200, history.text
    changes = history.json()["changes"]
    assert [h["action"] for h in changes] == ["create", "update", "close"]
    assert {h["actor"] for h in changes} == {ADMIN_NAME}
    assert changes[1]["changes"] == {"opening_hours": ["Mo-Fr 09:00-17:00", "Sa-Su 10:00-16:00"]}
    assert changes[2]["changes"] == {"active": [True, False]}
    versions = [h["version"] for h in changes]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert changes[0]["at"] <= changes[1]["at"] <= changes[2]["at"]
    team_url = f"/teams/{quote(team['team_id'], safe='')}/history"
    team_changes = client.get(team_url, headers=admin).json()["changes"]
    assert [h["action"] for h in team_changes] == ["create", "close"]
    assert team_changes[-1]["changes"] == {"active": [True, False], "site_active": [True, False]}


def test_teams_edit_and_deactivate(
    client: TestClient, admin: dict[str, str], district: geo.District
) -> None:
    seat = str(district.positions["site_id"].iloc[0])
    r = client.post("/teams", headers=admin, json={
        "name": "法律队", "categories": ["legal"], "site_id": seat, "capacity": 1,
        "leader_contact": "13900001111"})
    assert r.status_code == 201, r.text
    url = r.headers["location"]
    problem(client.patch(url, json={"capacity": 5}, headers=admin), 428, "precondition_required")
    ok = client.patch(url, json={"capacity": 5, "categories": ["legal", "assistance"]},
                      headers={**admin, "If-Match": r.headers["etag"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["capacity"] == 5 and ok.json()["categories"] == ["legal", "assistance"]
    problem(client.patch(url, json={"capacity": 9}, headers={**admin, "If-Match": r.headers[
        "etag"]}), 412, "precondition_failed")
    gone = client.delete(url, headers=admin)
    assert gone.status_code == 200 and gone.json()["active"] is False
    problem(client.get(url), 404, "not_found")
    changes = client.get(url + "/history", headers=admin).json()["changes"]
    assert [h["action"] for h in changes] == ["create", "update", "update"]
    assert changes[1]["changes"]["capacity"] == [1, 5]
    assert changes[2]["changes"] == {"active": [True, False]}
    assert {h["actor"] for h in changes} == {ADMIN_NAME}


# ------------------------------------------------------------------- who may, bad bodies


def test_only_admins_change_or_read_history(
    client: TestClient, far_place: Place, district: geo.District, db_url: str,
) -> None:
    body = position_body(far_place)
    site = str(district.positions["site_id"].iloc[0])
    site_url = f"/positions/{quote(site, safe='')}"
    calls = [("POST", "/positions", body), ("PATCH", site_url, {"name": "x"}),
             ("DELETE", site_url, None), ("GET", site_url + "/history", None),
             ("POST", "/teams", {"name": "x", "categories": ["legal"], "site_id": site,
                                 "capacity": 1})]
    team_id = str(district.teams["team_id"].iloc[0])
    others = {"resident": user(db_url, "resident", "居民"),
              "dispatcher": user(db_url, "dispatcher", "调度员"),
              "team": user(db_url, "team", "队长", team_id)}
    for method, path, payload in calls:
        kw: dict[str, Any] = {"json": payload} if payload is not None else {}
        problem(client.request(method, path, **kw), 401, "unauthorized")
        for who in others.values():
            problem(client.request(method, path, headers={**who, "If-Match": "*"}, **kw),
                    403, "forbidden")
    assert client.get(site_url).json()["site_id"] == site  # reading is public
    problem(client.get(site_url, headers={"Authorization": "Bearer pc_nope"}), 401,
            "unauthorized")
    problem(client.get("/positions/no-such-site"), 404, "not_found")
    assert len(client.get("/sites").json()["features"]) == len(district.positions)


def _wrong_parent(district: geo.District) -> dict[str, Any]:
    sites = district.positions[district.positions["level"] == "site"]
    return {"parent_id": str(sites["site_id"].iloc[0])}  # a 点 cannot hang under a 点


@pytest.mark.parametrize(("change", "code"), [
    ({"level": "village"}, "invalid_registry_entry"),
    ({"categories": ["elderly", "karaoke"]}, "unknown_category"),
    ({"lon": 116.3526, "lat": 40.0036}, "out_of_area"),  # Beijing
    ("wrong_parent", "invalid_registry_entry"),
    ({"parent_id": "小店区-C999"}, "invalid_registry_entry"),
])
def test_bad_positions_are_422_in_chinese_and_change_nothing(
    client: TestClient, admin: dict[str, str], far_place: Place, district: geo.District,
    db_url: str, change: Any, code: str,
) -> None:
    extra = _wrong_parent(district) if change == "wrong_parent" else change
    with session_maker(db_url)() as s:
        version = registry_version(s, district.name)
    problem(client.post("/positions", json=position_body(far_place, **extra), headers=admin),
            422, code)
    with session_maker(db_url)() as s:
        assert registry_version(s, district.name) == version
    assert len(client.get("/sites").json()["features"]) == len(district.positions)


def test_bad_edits_and_teams_are_422(
    client: TestClient, admin: dict[str, str], far_place: Place, district: geo.District
) -> None:
    r = open_position(client, admin, far_place)
    url, tag = r.headers["location"], r.headers["etag"]
    edit = {**admin, "If-Match": tag}
    problem(client.patch(url, json={"level": "hamlet"}, headers=edit), 422,
            "invalid_registry_entry")
    problem(client.patch(url, json={"lon": 116.3526, "lat": 40.0036}, headers=edit), 422,
            "out_of_area")
    problem(client.patch(url, json={"lon": 112.5}, headers=edit), 422, "invalid_request")
    problem(client.patch(url, json={"name": None}, headers=edit), 422, "invalid_request")
    problem(client.patch(url, json={"site_id": "x"}, headers=edit), 422, "invalid_request")
    assert client.get(url).headers["etag"] == tag  # none of these changed it
    problem(client.post("/teams", headers=admin, json={
        "name": "队", "categories": ["karaoke"], "site_id": r.json()["site_id"],
        "capacity": 1}), 422, "unknown_category")
    problem(client.post("/teams", headers=admin, json={
        "name": "队", "categories": ["legal"], "site_id": "小店区-S999", "capacity": 1}),
        422, "invalid_registry_entry")
    problem(client.post("/teams", headers=admin, json={
        "name": "队", "categories": ["legal"], "site_id": r.json()["site_id"],
        "capacity": -1}), 422, "invalid_request")


# -------------------------------------------------------------- (d) every worker, at once


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, dict[str, Any]]:
    """GET on a kept-alive connection; return the pid of the worker that answered."""
    conn.request("GET", path)
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 200, body
    return _owner(conn), body


def _owner(conn: http.client.HTTPConnection) -> int:
    """The server process holding the other end of a client connection (Linux /proc)."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    server_port = conn.sock.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote = cols[1].split(":"), cols[2].split(":")
        if int(local[1], 16) == server_port and int(remote[1], 16) == client_port:
            inode = cols[9]
    assert inode is not None
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                return int(pid)
        except OSError:
            continue
    raise AssertionError("no process holds the connection")


@pytest.fixture(scope="module")
def server(db_url: str, cache_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    srv = Server(url=db_url, cache=cache_dir, log=log, workers=2,
                 env={"PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def two_workers(server: Server, db_url: str, district: geo.District,
                ) -> Iterator[Server]:
    """A real uvicorn with two worker processes; the registry is put back afterwards."""
    reset(db_url, district)
    ids, last = registry_state(db_url, district)
    yield server
    restore(db_url, district, ids, last)


@pytest.mark.slow
def test_every_worker_serves_a_change_on_its_next_request(
    two_workers: Server, db_url: str, far_place: Place, district: geo.District,
) -> None:
    host, port = "127.0.0.1", two_workers.port
    # One kept-alive connection to each worker, each worker serving the registry as it was.
    conns: dict[int, http.client.HTTPConnection] = {}
    for _ in range(40):
        conn = http.client.HTTPConnection(host, port, timeout=60)
        pid, fc = _get(conn, "/sites")
        assert len(fc["features"]) == len(district.positions)
        if pid in conns:
            conn.close()
        else:
            conns[pid] = conn
        if len(conns) == 2:
            break
    assert len(conns) == 2, "the connections all reached one worker"

    admin = user(db_url, "admin", ADMIN_NAME)
    r = httpx.post(two_workers.base + "/positions", json=position_body(far_place),
                   headers=admin, timeout=60)
    assert r.status_code == 201, r.text
    sid = r.json()["site_id"]

    seen: dict[int, int] = {}
    pids = list(conns)
    for i in range(10):
        pid, fc = _get(conns[pids[i % 2]], "/sites")
        assert pid == pids[i % 2]
        assert len(fc["features"]) == len(district.positions) + 1, (i, pid)
        assert sid in site_ids(fc), (i, pid)
        seen[pid] = seen.get(pid, 0) + 1
    assert seen == {pids[0]: 5, pids[1]: 5}
    for conn in conns.values():
        conn.close()


@pytest.mark.slow
def test_concurrent_creations_get_distinct_ids(
    two_workers: Server, db_url: str, far_place: Place
) -> None:
    admin = user(db_url, "admin", ADMIN_NAME)
    n = 6
    barrier = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            barrier.wait()
            return c.post(two_workers.base + "/positions", headers=admin,
                          json=position_body(far_place, name=f"并发实践点{i}"))

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, range(n)))
    assert [a.status_code for a in answers] == [201] * n, [a.text for a in answers]
    ids = {a.json()["site_id"] for a in answers}
    assert len(ids) == n
    fc = httpx.get(two_workers.base + "/sites", timeout=60).json()
    assert ids <= set(site_ids(fc))
