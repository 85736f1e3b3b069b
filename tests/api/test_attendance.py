"""Check-in and check-out on site: rotating signed codes, the time window and the walk.

The walk is the street network's: a point 250 m from the activity in a straight line but a long
detour away (across the Fen river or a railway) is refused, which a straight-line circle would
let through. The detour is found with networkx on the district's edges, not with the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import networkx as nx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import geo
from api.services.attendance import current_code
from api.settings import get_settings
from api.storage.models import Attendance
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_volunteer, problem


@dataclass(frozen=True)
class Site:
    """A position on a street, a node a short walk away, and one across a barrier."""

    site_id: str
    near: tuple[float, float]
    near_walk_m: float
    across: tuple[float, float]
    across_straight_m: float
    across_walk_m: float


@pytest.fixture(scope="module")
def site(district: geo.District) -> Site:
    network = district.network
    G = nx.Graph()
    for u, v, length in zip(network.edges["u"], network.edges["v"], network.edges["length"],
                            strict=True):
        if not G.has_edge(u, v) or G[u][v]["w"] > length:
            G.add_edge(u, v, w=float(length))
    nodes = network.nodes.to_crs(network.crs_metric)
    xy = np.c_[nodes.geometry.x, nodes.geometry.y]
    for row in district.positions.to_crs(network.crs_metric).itertuples():
        straight = np.hypot(*(xy - [row.geometry.x, row.geometry.y]).T)
        door = int(straight.argmin())
        if straight[door] > 40:  # a position right on its street: the access walk is short
            continue
        walk = nx.single_source_dijkstra_path_length(G, nodes.index[door], weight="w")
        on_net = np.array([walk.get(i, np.inf) for i in nodes.index])
        across = np.where((straight < 300) & (on_net > 900))[0]
        near = np.where((straight < 120) & (on_net < 120) & (straight > 20))[0]
        if len(across) and len(near):
            a, n = int(across[0]), int(near[0])
            wgs = network.nodes
            return Site(str(row.site_id), (wgs.x.iloc[n], wgs.y.iloc[n]), float(on_net[n]),
                        (wgs.x.iloc[a], wgs.y.iloc[a]), float(straight[a]), float(on_net[a]))
    raise AssertionError("no position with a detour across a barrier in the district")






def publish(c: TestClient, admin: dict[str, str], site_id: str, *, starts_in_min: float,
            hours: float = 2, capacity: int = 5) -> int:
    start = datetime.now(UTC) + timedelta(minutes=starts_in_min)
    r = c.post("/activities", headers=admin, json={
        "title": "垃圾分类宣传", "category": "environment", "site_id": site_id,
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=hours)).isoformat(),
        "capacity": capacity})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def at(point: tuple[float, float], code: str) -> dict[str, Any]:
    return {"code": code, "lon": point[0], "lat": point[1]}


def test_the_code_rotates_and_an_old_or_forged_one_fails(
    client: TestClient, actors: Actors, site: Site,
) -> None:
    admin = actors.user("admin")
    aid = publish(client, admin, site.site_id, starts_in_min=-10)
    shown = client.get(f"/activities/{aid}/checkin-code", headers=admin)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert len(body["code"]) == 6 and body["qr_svg"].lstrip().startswith(("<?xml", "<svg"))
    assert f"activity={aid}" in body["qr_text"] and body["code"] in body["qr_text"]
    until = datetime.fromisoformat(body["valid_until"])
    period = timedelta(minutes=get_settings().checkin_code_minutes)
    assert timedelta(0) < until - datetime.now(UTC) <= period
    png = client.get(f"/activities/{aid}/checkin-code", headers=admin, params={"image": "png"})
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"

    _, me = new_volunteer(client)
    assert client.post(f"/activities/{aid}/signups", headers=me).json()["state"] == "confirmed"
    problem(client.get(f"/activities/{aid}/checkin-code", headers=me), 403, "forbidden")
    old, _ = current_code(aid, at=datetime.now(UTC) - 2 * period)
    other, _ = current_code(aid + 1)  # another activity's code
    for wrong in {old, other, "ABCDEF"} - {body["code"]}:
        problem(client.post(f"/activities/{aid}/checkins", headers=me,
                            json=at(site.near, wrong)), 422, "bad_code")
    just_before, _ = current_code(aid, at=datetime.now(UTC) - period)  # shown as it rotated
    r = client.post(f"/activities/{aid}/checkins", headers=me, json=at(site.near, just_before))
    assert r.status_code == 201, r.text


def test_a_walk_across_a_barrier_is_too_far_though_the_crow_flies_close(
    client: TestClient, actors: Actors, site: Site,
) -> None:
    limit = get_settings().checkin_walk_minutes
    pace = geo.DEFAULT_WALK_M_PER_MIN
    assert site.across_straight_m < limit * pace < site.across_walk_m
    admin = actors.user("admin")
    aid = publish(client, admin, site.site_id, starts_in_min=-10)
    code = client.get(f"/activities/{aid}/checkin-code", headers=admin).json()["code"]
    _, me = new_volunteer(client)
    client.post(f"/activities/{aid}/signups", headers=me)

    body = problem(client.post(f"/activities/{aid}/checkins", headers=me,
                               json=at(site.across, code)), 422, "too_far")
    assert body["walk_minutes"] > limit and body["limit_minutes"] == limit
    assert "分钟" in body["detail"]
    problem(client.post(f"/activities/{aid}/checkins", headers=me, json=at((20.0, 0.0), code)),
            422, "out_of_area")

    ok = client.post(f"/activities/{aid}/checkins", headers=me, json=at(site.near, code))
    assert ok.status_code == 201, ok.text
    assert ok.json()["checkin_walk_minutes"] <= limit
    problem(client.post(f"/activities/{aid}/checkins", headers=me, json=at(site.near, code)),
            409, "attendance_state")  # once per activity


def test_only_confirmed_volunteers_check_in_and_only_in_the_window(
    client: TestClient, actors: Actors, site: Site,
) -> None:
    admin = actors.user("admin")
    full = publish(client, admin, site.site_id, starts_in_min=-10, capacity=1)
    code = client.get(f"/activities/{full}/checkin-code", headers=admin).json()["code"]
    _, first = new_volunteer(client)
    _, second = new_volunteer(client)
    client.post(f"/activities/{full}/signups", headers=first)
    assert client.post(f"/activities/{full}/signups",
                       headers=second).json()["state"] == "waitlisted"
    problem(client.post(f"/activities/{full}/checkins", headers=second,
                        json=at(site.near, code)), 403, "not_signed_up")

    grace = get_settings().checkin_grace_minutes
    later = publish(client, admin, site.site_id, starts_in_min=grace + 60)
    code = client.get(f"/activities/{later}/checkin-code", headers=admin).json()["code"]
    client.post(f"/activities/{later}/signups", headers=first)
    body = problem(client.post(f"/activities/{later}/checkins", headers=first,
                               json=at(site.near, code)), 409, "outside_window")
    assert "北京时间" in body["detail"]


def test_checkout_credits_the_hours_within_the_window_and_points(
    client: TestClient, actors: Actors, site: Site, db: str,
) -> None:
    admin = actors.user("admin")
    aid = publish(client, admin, site.site_id, starts_in_min=-60, hours=3)
    code = client.get(f"/activities/{aid}/checkin-code", headers=admin).json()["code"]
    vid, me = new_volunteer(client)
    client.post(f"/activities/{aid}/signups", headers=me)
    problem(client.post(f"/activities/{aid}/checkouts", headers=me, json=at(site.near, code)),
            409, "attendance_state")  # no check-in yet
    assert client.post(f"/activities/{aid}/checkins", headers=me,
                       json=at(site.near, code)).status_code == 201
    # The volunteer came 20 minutes before the start: hours count from the start.
    start = datetime.fromisoformat(client.get(f"/activities/{aid}").json()["starts_at"])
    with session_maker(db)() as s:
        s.execute(update(Attendance).where(Attendance.activity_id == aid)
                  .values(checkin_at=start - timedelta(minutes=20)))
        s.commit()
    out = client.post(f"/activities/{aid}/checkouts", headers=me, json=at(site.near, code))
    assert out.status_code == 200, out.text
    served_h = (datetime.fromisoformat(out.json()["checkout_at"]) - start).total_seconds() / 3600
    assert out.json()["hours"] == pytest.approx(served_h, abs=0.01)
    problem(client.post(f"/activities/{aid}/checkouts", headers=me, json=at(site.near, code)),
            409, "attendance_state")

    record = client.get("/volunteers/me/record", headers=me).json()
    assert record["hours"] == pytest.approx(out.json()["hours"])
    assert record["points"] == round(out.json()["hours"] * get_settings().points_per_hour)
    assert [e["kind"] for e in record["entries"]] == ["activity"]
    assert record["entries"][0]["activity_id"] == aid and record["volunteer_id"] == vid
