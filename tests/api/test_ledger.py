"""Hours and points ledgers: back-fills approved by an admin, star levels, rankings, certificate."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

import geo
from api.services.leaderboard import STAR_HOURS
from api.settings import get_settings
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_volunteer, problem


def test_backfills_wait_for_an_admin_then_count_with_points_and_stars(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    team = actors.new_team("culture")
    admin = actors.user("admin")
    leader_id, leader = new_volunteer(client, "队长")
    member_id, member = new_volunteer(client, "<b>队员</b>")
    _, outsider = new_volunteer(client, "旁人")
    for vid, lead in ((leader_id, True), (member_id, False)):
        assert client.post(f"/teams/{team}/members", headers=admin,
                           json={"volunteer_id": vid, "leader": lead}).status_code == 201

    hours = float(STAR_HOURS[0]) + 0.5  # just past the first star
    proposal = {"hours": hours, "kind": "backfill", "note": "2025 年线下服务补录"}
    problem(client.post(f"/volunteers/{member_id}/hours", headers=outsider, json=proposal),
            403, "forbidden")
    problem(client.post(f"/volunteers/{member_id}/hours", headers=leader,
                        json={**proposal, "kind": "activity"}), 422, "invalid_hours")
    r = client.post(f"/volunteers/{member_id}/hours", headers=leader, json=proposal)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["state"] == "pending" and entry["team_id"] == team

    before = client.get("/volunteers/me/record", headers=member).json()
    assert before["hours"] == 0 and before["points"] == 0 and before["star_level"] == 0
    problem(client.post(f"/hours/{entry['id']}/approve", headers=leader), 403, "forbidden")
    ok = client.post(f"/hours/{entry['id']}/approve", headers=admin)
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    problem(client.post(f"/hours/{entry['id']}/reject", headers=admin), 409, "entry_decided")

    after = client.get("/volunteers/me/record", headers=member).json()
    assert after["hours"] == hours
    assert after["points"] == round(hours * get_settings().points_per_hour)
    assert after["star_level"] == 1 and after["next_star_hours"] == STAR_HOURS[1]

    # A correction downwards that an admin rejects changes nothing.
    down = client.post(f"/volunteers/{member_id}/hours", headers=leader,
                       json={"hours": -10, "kind": "correction", "note": "重复录入"}).json()
    assert client.post(f"/hours/{down['id']}/reject", headers=admin).json()["state"] == "rejected"
    assert client.get("/volunteers/me/record", headers=member).json()["hours"] == hours

    month = datetime.now(UTC).strftime("%Y-%m")
    for params in ({}, {"month": month}):
        ranked = client.get("/leaderboard/volunteers", params=params).json()["items"]
        assert ranked[0]["id"] == member_id and ranked[0]["hours"] == hours
    assert client.get("/leaderboard/volunteers",
                      params={"month": "2001-01"}).json()["items"] == []
    teams = client.get("/leaderboard/volunteers", params={"by": "team"}).json()["items"]
    assert teams[0]["id"] == team and teams[0]["members"] == 2

    page = client.get("/volunteers/me/certificate", headers=member)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text and "志愿服务证明" in page.text
    assert "&lt;b&gt;队员&lt;/b&gt;" in page.text and "<b>队员</b>" not in page.text
    assert f"{hours:g}" in page.text and "一星级" in page.text
    assert "重复录入" not in page.text  # rejected lines are not listed


def test_ranking_months_are_checked(client: TestClient) -> None:
    for month in ("0000-01", "2026-13", "2026-1", "9999-12"):
        r = client.get("/leaderboard/volunteers", params={"month": month})
        assert r.status_code == 422, (month, r.text)
    assert client.get("/leaderboard/volunteers", params={"month": "2026-12"}).status_code == 200
