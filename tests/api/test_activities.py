"""Activities: published by leaders, found by walking minutes, in iCalendar, signed up for.

The races (many volunteers at once for the last places) run through a real server in
tests/api/dispatch/test_reliability.py; here the rules, one request at a time, on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

import geo
from geo.categories import category
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_volunteer, problem


def leader_of(c: TestClient, actors: Actors, team_id: str) -> dict[str, str]:
    vid, auth = new_volunteer(c, "队长")
    r = c.post(f"/teams/{team_id}/members", headers=actors.user("admin"),
               json={"volunteer_id": vid, "leader": True})
    assert r.status_code == 201, r.text
    return auth


def activity(site_id: str, *, capacity: int = 2, hours_ahead: float = 24,
             **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=hours_ahead)
    return {"title": "重阳敬老义诊", "category": "health", "site_id": site_id,
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
            "capacity": capacity, **extra}


@pytest.fixture
def team(actors: Actors, district: geo.District) -> str:
    return actors.new_team("health", site_id=str(district.positions["site_id"].iloc[0]))


def test_leaders_and_admins_publish_others_cannot(
    client: TestClient, actors: Actors, team: str, district: geo.District,
) -> None:
    site = str(district.positions["site_id"].iloc[1])
    leader = leader_of(client, actors, team)
    r = client.post("/activities", headers=leader, json=activity(site, theme="敬老月"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["team_id"] == team and made["site_id"] == site and made["spaces_left"] == 2
    assert made["category_name"] == category("health").name
    assert r.headers["location"] == f"/activities/{made['id']}"
    assert client.get(r.headers["location"]).json()["theme"] == "敬老月"

    _, plain = new_volunteer(client)
    problem(client.post("/activities", headers=plain, json=activity(site)), 403, "forbidden")
    problem(client.post("/activities", headers=actors.resident(), json=activity(site)),
            403, "forbidden")
    other = actors.new_team("health")
    problem(client.post("/activities", headers=leader, json=activity(site, team_id=other)),
            403, "forbidden")
    admin = actors.user("admin")
    assert client.post("/activities", headers=admin, json=activity(site)).status_code == 201

    bad = activity(site)
    bad["ends_at"] = bad["starts_at"]
    body = problem(client.post("/activities", headers=admin, json=bad), 422, "invalid_activity")
    assert body["field"] == "ends_at"
    problem(client.post("/activities", headers=admin, json=activity("没有这个阵地")),
            422, "invalid_activity")
    problem(client.post("/activities", headers=admin, json=activity(site, category="knit")),
            422, "unknown_category")
    naive = activity(site)
    naive["starts_at"] = naive["starts_at"][:19]  # no time zone: ambiguous for a calendar
    assert client.post("/activities", headers=admin, json=naive).status_code == 422


def test_near_sorts_by_walking_minutes_on_the_network(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    admin = actors.user("admin")
    sites = district.positions.iloc[:6]
    made = {}
    for row in sites.itertuples():
        r = client.post("/activities", headers=admin, json=activity(str(row.site_id)))
        assert r.status_code == 201, r.text
        made[r.json()["id"]] = str(row.site_id)
    here = sites.geometry.iloc[0]
    listed = client.get("/activities", params={"near": f"{here.x},{here.y}"}).json()
    items = [i for i in listed["items"] if i["id"] in made]
    assert len(items) == len(made)
    minutes = [i["walk_minutes"] for i in items]
    assert minutes == sorted(minutes) and items[0]["site_id"] == sites["site_id"].iloc[0]

    # The same walks as /nearest finds them with its own search from the point.
    nearest = client.get("/nearest", params={"lon": here.x, "lat": here.y, "limit": 20}).json()
    by_site = {f["properties"]["site_id"]: f["properties"]["walk_minutes"]
               for f in nearest["features"]}
    for item in items:
        if item["site_id"] in by_site:
            assert item["walk_minutes"] == pytest.approx(by_site[item["site_id"]], abs=0.06)

    plain = client.get("/activities").json()["items"]
    starts = [i["starts_at"] for i in plain]
    assert starts == sorted(starts) and all(i["walk_minutes"] is None for i in plain)
    problem(client.get("/activities", params={"near": "112.5"}), 422, "invalid_near")
    problem(client.get("/activities", params={"near": "20,0"}), 422, "out_of_area")


def test_the_calendar_feed_reads_back(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    admin = actors.user("admin")
    site = district.positions.iloc[2]
    r = client.post("/activities", headers=admin,
                    json=activity(str(site.site_id), description="测血压、量血糖"))
    made = r.json()
    feed = client.get("/activities.ics")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(feed.content)
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    event = events[f"activity-{made['id']}@practice-circle"]
    def second(iso: str) -> datetime:  # iCalendar times have whole seconds
        return datetime.fromisoformat(iso).replace(microsecond=0)

    assert event.decoded("dtstart") == second(made["starts_at"])
    assert event.decoded("dtend") == second(made["ends_at"])
    assert str(event["summary"]) == made["title"]
    assert site["name"] in str(event["location"])
    assert "测血压" in str(event["description"])
    assert event["geo"].latitude == pytest.approx(site.geometry.y)
    one = Calendar.from_ical(client.get(f"/activities/{made['id']}.ics").content)
    assert [str(e["uid"]) for e in one.walk("VEVENT")] == [str(event["uid"])]


def test_signups_fill_then_waitlist_then_promote_in_order(
    client: TestClient, actors: Actors, team: str, district: geo.District,
) -> None:
    leader = leader_of(client, actors, team)
    site = str(district.positions["site_id"].iloc[0])
    aid = client.post("/activities", headers=leader, json=activity(site, capacity=2)).json()["id"]
    people = [new_volunteer(client, f"志愿者{i}") for i in range(5)]
    states = []
    for _, auth in people:
        r = client.post(f"/activities/{aid}/signups", headers=auth)
        assert r.status_code == 201, r.text
        states.append((r.json()["state"], r.json()["waitlist_place"]))
    assert states == [("confirmed", None), ("confirmed", None), ("waitlisted", 1),
                      ("waitlisted", 2), ("waitlisted", 3)]
    again = client.post(f"/activities/{aid}/signups", headers=people[0][1])
    assert again.status_code == 200 and again.json()["state"] == "confirmed"
    assert client.get(f"/activities/{aid}").json()["spaces_left"] == 0

    out = client.delete(f"/activities/{aid}/signups", headers=people[1][1]).json()
    assert out["cancelled"]["state"] == "cancelled"
    assert out["promoted"]["volunteer_id"] == people[2][0]
    assert out["promoted"]["state_name"] == "已报名"
    # A waitlisted volunteer leaving promotes nobody; the queue closes up.
    out = client.delete(f"/activities/{aid}/signups", headers=people[3][1]).json()
    assert out["promoted"] is None
    listed = client.get(f"/activities/{aid}/signups", headers=leader).json()["items"]
    by_id = {s["volunteer_id"]: s for s in listed}
    assert by_id[people[4][0]]["waitlist_place"] == 1
    confirmed = [s["volunteer_id"] for s in listed if s["state"] == "confirmed"]
    assert sorted(confirmed) == sorted([people[0][0], people[2][0]])
    problem(client.get(f"/activities/{aid}/signups", headers=people[0][1]), 403, "forbidden")
    problem(client.delete(f"/activities/{aid}/signups", headers=people[1][1]), 404, "not_found")
    problem(client.post(f"/activities/{aid}/signups", headers=actors.resident()),
            403, "forbidden")
    # Back after cancelling: at the end of the queue.
    back = client.post(f"/activities/{aid}/signups", headers=people[1][1]).json()
    assert back["state"] == "waitlisted" and back["waitlist_place"] == 2


def test_ended_activities_take_no_signups(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    admin = actors.user("admin")
    site = str(district.positions["site_id"].iloc[0])
    past = client.post("/activities", headers=admin, json=activity(site, hours_ahead=-5))
    assert past.status_code == 201, past.text
    _, auth = new_volunteer(client)
    problem(client.post(f"/activities/{past.json()['id']}/signups", headers=auth),
            409, "activity_closed")
    assert past.json()["id"] not in [i["id"] for i in client.get("/activities").json()["items"]]


def test_extreme_windows_are_answered(client: TestClient) -> None:
    for params in ({"from": "9999-12-31T00:00:00Z"}, {"from": "0001-01-01T00:00:00Z"},
                   {"to": "0001-01-01T00:00:00"}, {"from": "2026-12-01T08:00:00+08:00"}):
        r = client.get("/activities", params=params)
        assert r.status_code == 200, (params, r.text)
        assert client.get("/activities.ics", params=params).status_code == 200
