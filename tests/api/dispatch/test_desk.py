"""The dispatcher's workbench through the app, on SQLite and on PostGIS.

Where an order belongs (the nearest 站 by walking), SLA timers and escalation 站 → 所 → 中心
with its history, duplicates by walking on the network, merge, reject with a reason the
resident reads, re-dispatch, 所站配单 (a station account in its area only) and team actions
by a volunteer who leads the team.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import select, update

import geo
from api.services.accounts import create_user
from api.services.escalation import escalate_due
from api.services.nearest import nearest_positions
from api.storage.models import (
    OutboxEvent,
    ServiceRequest,
    TeamMember,
    Volunteer,
    as_utc,
)
from api.storage.session import session_maker
from tests.api.dispatch.helpers import HOME, Actors, new_request
from tests.api.dispatch.test_lifecycle import problem

# Two points ~125 m apart in a straight line and ~230 m apart by streets: duplicates.
NEAR_A = (112.539897, 37.812510)
NEAR_B = (112.541180, 37.812254)
# Two points ~85 m apart in a straight line but ~2.9 km apart by streets: not duplicates.
FAR_C = (112.600944, 37.796039)
FAR_D = (112.601908, 37.796076)
GEOD = Geod(ellps="WGS84")


def straight_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def order(client: TestClient, who: dict[str, str], category: str = "elderly",
          at: tuple[float, float] = HOME) -> dict[str, Any]:
    r = client.post("/requests", json=new_request(category, lon=at[0], lat=at[1]), headers=who)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def station(actors: Actors, site_id: str) -> dict[str, str]:
    with session_maker(actors.url)() as s:
        _, token = create_user(s, role="station", name=f"站账号-{site_id}", site_id=site_id)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def leader(actors: Actors, team_id: str, *, lead: bool = True) -> dict[str, str]:
    """A volunteer user who is a member (the leader, with ``lead``) of a team."""
    actors.counter += 1
    with session_maker(actors.url)() as s:
        user, token = create_user(s, role="volunteer", name=f"队长{actors.counter}")
        vol = Volunteer(user_id=user.id, district=actors.district.name, name=user.name,
                        phone=f"139{actors.counter:08d}", categories="elderly")
        s.add(vol)
        s.flush()
        s.add(TeamMember(team_id=team_id, volunteer_id=vol.id, leader=lead))
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def row(url: str, request_id: int) -> ServiceRequest:
    with session_maker(url)() as s:
        found = s.get(ServiceRequest, request_id)
        assert found is not None
        s.expunge(found)
        return found


def backdate(url: str, request_id: int, minutes: float) -> None:
    """Make an order look as if it had waited ``minutes`` at its level."""
    when = row(url, request_id).level_since
    assert when is not None
    earlier = as_utc(when) - timedelta(minutes=minutes)
    with session_maker(url)() as s:
        s.execute(update(ServiceRequest).where(ServiceRequest.id == request_id)
                  .values(level_since=earlier, created_at=earlier))
        s.commit()


def positions(district: geo.District) -> dict[str, Any]:
    return {str(r.site_id): r for r in district.positions.itertuples()}


def test_an_order_belongs_to_the_nearest_station_by_walking(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident = actors.resident()
    for at in (HOME, NEAR_A, FAR_C):
        req = order(client, resident, at=at)
        # Independently: the walk from the point to every position (api/services/nearest.py).
        ranked = nearest_positions(district, at[0], at[1], limit=len(district.positions))
        first_station = next(f["properties"] for f in ranked["features"]
                             if f["properties"]["level"] == "community")
        assert req["level"] == "community" and req["level_zh"] == "站"
        assert req["area_site_id"] == first_station["site_id"]
        assert req["area_name"] == first_station["name"]
        stored = row(actors.url, req["id"])
        assert stored.level_since is not None
        assert as_utc(stored.level_since) == as_utc(stored.created_at)


def test_queue_shows_sla_timers_and_overdue(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    fresh = order(client, resident, "elderly")
    late = order(client, resident, "legal")
    backdate(actors.url, late["id"], 150)  # "legal" falls under "*": 120 minutes

    r = client.get("/desk/queue", headers=dispatcher)
    assert r.status_code == 200, r.text
    q = r.json()
    items = {i["id"]: i for i in q["items"]}
    assert list(items) == [late["id"], fresh["id"]]  # oldest first
    f, lt = items[fresh["id"]], items[late["id"]]
    assert f["sla_minutes"] == 60 and not f["overdue"] and f["age_minutes"] < 5
    assert lt["sla_minutes"] == 120 and lt["overdue"] and 149 <= lt["age_minutes"] < 160
    due = datetime.fromisoformat(lt["due_at"])
    assert due == datetime.fromisoformat(lt["created_at"]) + timedelta(minutes=120)
    assert q["overdue"] == 1 and q["counts"]["submitted"] == 2 and q["count"] == 2
    assert f["contact"] == "13812341234" and f["level_zh"] == "站" and f["area_name"]
    assert f["state_zh"] == "已点单（待派单）" and f["category_zh"] == "敬老助老"

    # Accepted orders are on the queue without a timer; filters by state.
    client.post(f"/requests/{fresh['id']}/dispatch", headers=dispatcher)
    team = actors.team(row(actors.url, fresh["id"]).team_id or "")
    assert client.post(f"/requests/{fresh['id']}/accept", headers=team).status_code == 200
    q = client.get("/desk/queue", params={"state": "accepted"}, headers=dispatcher).json()
    assert [i["id"] for i in q["items"]] == [fresh["id"]]
    assert q["items"][0]["due_at"] is None and q["items"][0]["overdue"] is False
    assert q["items"][0]["team_name"]

    problem(client.get("/desk/queue", headers=resident), 403, "forbidden")
    problem(client.get("/desk/queue"), 401, "unauthorized")


def test_escalation_climbs_station_township_center_with_history(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    req = order(client, resident, "elderly")
    calm = order(client, resident, "legal")
    t0 = as_utc(row(actors.url, req["id"]).created_at)
    sla = {"*": 500.0, "elderly": 30.0}
    factory = session_maker(actors.url)
    pos = positions(district)
    station_site = req["area_site_id"]
    township = pos[station_site].parent_id
    center = pos[township].parent_id
    assert pos[township].level == "township" and pos[center].level == "center"

    assert escalate_due(factory, sla=sla, now=t0 + timedelta(minutes=29)) == []
    moved = escalate_due(factory, sla=sla, now=t0 + timedelta(minutes=31))
    assert [(m.request_id, m.from_site, m.to_site) for m in moved] == [
        (req["id"], station_site, township)]
    # The clock restarted at the 所: not overdue again until another 30 minutes have passed.
    assert escalate_due(factory, sla=sla, now=t0 + timedelta(minutes=55)) == []
    moved = escalate_due(factory, sla=sla, now=t0 + timedelta(minutes=62))
    assert [(m.from_site, m.to_site) for m in moved] == [(township, center)]
    # Nothing is above the 中心: it stays there, overdue (the calm order is not due yet).
    assert escalate_due(factory, sla=sla, now=t0 + timedelta(minutes=200)) == []
    assert row(actors.url, calm["id"]).level == "community"

    body = client.get(f"/requests/{req['id']}", headers=dispatcher).json()
    assert body["level"] == "center" and body["area_site_id"] == center
    assert body["state"] == "submitted"
    ups = [h for h in body["history"] if h["action"] == "escalate"]
    assert len(ups) == 2
    assert all(h["from_state"] == h["to_state"] == "submitted" for h in ups)
    assert ups[0]["note"].startswith(f"{pos[station_site].name} → {pos[township].name}")
    assert ups[1]["note"].startswith(f"{pos[township].name} → {pos[center].name}")
    assert all("超时未派单，自动升级" in h["note"] for h in ups)
    with factory() as s:
        events = [(e.audience, json.loads(e.subject), e.message_zh) for e in s.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "request.escalate")
            .order_by(OutboxEvent.id))]
    assert all(subject["request_id"] == req["id"] for _, subject, _ in events)
    desk = [(subject["level"], text) for audience, subject, text in events
            if audience == "dispatcher"]
    assert [level for level, _ in desk] == ["township", "center"]
    assert "超时未处理，已升级至" in desk[0][1] and pos[township].name in desk[0][1]
    told = [(subject["resident_id"], text) for audience, subject, text in events
            if audience == "resident"]
    assert len(told) == 2 and told[0][0] == req["resident_id"]
    assert pos[center].name in told[1][1]
    # The resident sees who answers for it now.
    mine = client.get(f"/requests/{req['id']}", headers=resident).json()
    assert mine["level_zh"] == "中心" and mine["area_name"] == pos[center].name


def test_duplicates_are_flagged_by_walking_on_the_network(
    client: TestClient, actors: Actors
) -> None:
    # The premise: C and D are closer in a straight line than A and B.
    assert straight_m(FAR_C, FAR_D) < straight_m(NEAR_A, NEAR_B) < 300
    resident, dispatcher = actors.resident(), actors.dispatcher()
    a = order(client, resident, "elderly", NEAR_A)
    b = order(client, resident, "elderly", NEAR_B)
    c = order(client, resident, "elderly", FAR_C)
    d = order(client, resident, "elderly", FAR_D)
    other = order(client, resident, "legal", NEAR_A)  # same place, another service
    items = {i["id"]: i for i in client.get("/desk/queue", headers=dispatcher).json()["items"]}
    assert [x["id"] for x in items[a["id"]]["duplicates"]] == [b["id"]]
    assert [x["id"] for x in items[b["id"]]["duplicates"]] == [a["id"]]
    walk = items[a["id"]]["duplicates"][0]["walk_m"]
    assert 150 < walk < 300
    assert items[c["id"]]["duplicates"] == [] and items[d["id"]]["duplicates"] == []
    assert items[other["id"]]["duplicates"] == []


def test_merge_a_duplicate(client: TestClient, actors: Actors) -> None:
    resident, other_resident, dispatcher = actors.resident(), actors.resident(), actors.dispatcher()
    keep = order(client, resident, "elderly", NEAR_A)
    dup = order(client, other_resident, "elderly", NEAR_B)
    legal = order(client, resident, "legal", NEAR_A)

    problem(client.post(f"/requests/{dup['id']}/merge", json={"into": dup["id"]},
                        headers=dispatcher), 422, "bad_merge_target")
    problem(client.post(f"/requests/{dup['id']}/merge", json={"into": legal["id"]},
                        headers=dispatcher), 422, "bad_merge_target")
    problem(client.post(f"/requests/{dup['id']}/merge", json={"into": keep["id"]},
                        headers=other_resident), 403, "forbidden")
    r = client.post(f"/requests/{dup['id']}/merge", json={"into": keep["id"]}, headers=dispatcher)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "merged" and r.json()["merged_into"] == keep["id"]
    seen = client.get(f"/requests/{dup['id']}", headers=other_resident).json()
    assert seen["state"] == "merged" and seen["state_zh"] == "已合并"
    assert seen["merged_into"] == keep["id"]
    assert seen["history"][-1]["action"] == "merge"
    assert f"#{keep['id']}" in seen["history"][-1]["note"]
    # Merged is closed: off the queue, cannot be merged again nor be merged into.
    problem(client.post(f"/requests/{dup['id']}/merge", json={"into": keep["id"]},
                        headers=dispatcher), 409, "invalid_transition")
    problem(client.post(f"/requests/{legal['id']}/merge", json={"into": dup["id"]},
                        headers=dispatcher), 422, "bad_merge_target")
    ids = [i["id"] for i in client.get("/desk/queue", headers=dispatcher).json()["items"]]
    assert dup["id"] not in ids and keep["id"] in ids


def test_reject_with_a_reason_the_resident_reads(client: TestClient, actors: Actors) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    req = order(client, resident)
    problem(client.post(f"/requests/{req['id']}/reject", json={"reason": " "},
                        headers=dispatcher), 422, "invalid_request")
    problem(client.post(f"/requests/{req['id']}/reject", json={"reason": "不办"},
                        headers=resident), 403, "forbidden")
    reason = "不属于志愿服务范围，请拨打 12345 热线"
    r = client.post(f"/requests/{req['id']}/reject", json={"reason": reason}, headers=dispatcher)
    assert r.status_code == 200, r.text
    seen = client.get(f"/requests/{req['id']}", headers=resident).json()
    assert seen["state"] == "rejected" and seen["state_zh"] == "已驳回"
    assert seen["reject_reason"] == reason
    assert seen["history"][-1]["action"] == "reject" and seen["history"][-1]["note"] == reason
    assert seen["next_actions"] == []
    # Only a waiting order can be rejected.
    accepted = order(client, resident)
    client.post(f"/requests/{accepted['id']}/dispatch", headers=dispatcher)
    team = actors.team(row(actors.url, accepted["id"]).team_id or "")
    client.post(f"/requests/{accepted['id']}/accept", headers=team)
    body = problem(client.post(f"/requests/{accepted['id']}/reject", json={"reason": reason},
                               headers=dispatcher), 409, "invalid_transition")
    assert body["state"] == "accepted"


def test_redispatch_to_another_team(client: TestClient, actors: Actors) -> None:
    actors.set_demo_teams_active(False)
    near = actors.new_team("elderly", capacity=3)
    nxt = actors.new_team("elderly", capacity=3)
    third = actors.new_team("elderly", capacity=3)
    resident, dispatcher = actors.resident(), actors.dispatcher()
    req = order(client, resident)
    r = client.post(f"/requests/{req['id']}/dispatch", json={"team_id": near},
                    headers=dispatcher)
    assert r.json()["team"]["team_id"] == near
    problem(client.post(f"/requests/{req['id']}/redispatch", json={"team_id": near},
                        headers=dispatcher), 409, "team_unavailable")
    r = client.post(f"/requests/{req['id']}/redispatch", headers=dispatcher)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "dispatched" and body["team"]["team_id"] in {nxt, third}
    assert body["round"] == 1 and body["history"][-1]["action"] == "redispatch"
    assert body["history"][-1]["from_state"] == "dispatched"
    # Accepted, then re-dispatched by name: back to dispatched with the named team.
    holder = actors.team(body["team"]["team_id"])
    assert client.post(f"/requests/{req['id']}/accept", headers=holder).status_code == 200
    r = client.post(f"/requests/{req['id']}/redispatch", json={"team_id": near},
                    headers=dispatcher)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "dispatched" and r.json()["team"]["team_id"] == near
    assert r.json()["round"] == 2
    # The team it was taken from can no longer complete it.
    problem(client.post(f"/requests/{req['id']}/complete", json={"hours": 1},
                        headers=holder), 409, "invalid_transition")
    problem(client.post(f"/requests/{req['id']}/redispatch", headers=resident), 403, "forbidden")
    submitted = order(client, resident)
    problem(client.post(f"/requests/{submitted['id']}/redispatch", headers=dispatcher),
            409, "invalid_transition")


def test_station_allocates_only_in_its_area(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    req = order(client, resident)
    far = order(client, resident, at=FAR_C)
    pos = positions(district)
    mine = req["area_site_id"]
    township = pos[mine].parent_id
    other = next(s for s, p in pos.items()
                 if p.level == "community" and s not in {mine, far["area_site_id"]})
    assert far["area_site_id"] != mine
    own, elsewhere, suo = station(actors, mine), station(actors, other), station(actors, township)

    body = problem(client.post(f"/requests/{req['id']}/dispatch", headers=elsewhere),
                   403, "forbidden")
    assert body["area_site_id"] == mine
    problem(client.get(f"/requests/{req['id']}", headers=elsewhere), 404, "not_found")
    q = client.get("/desk/queue", headers=own).json()
    assert [i["id"] for i in q["items"]] == [req["id"]]
    assert q["items"][0]["contact"] == "13812341234"
    listed = client.get("/requests", headers=own).json()
    assert [i["id"] for i in listed["items"]] == [req["id"]]

    r = client.post(f"/requests/{req['id']}/dispatch", headers=own)
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["actor_role"] == "station"
    # The 所 above allocates the orders of its 站.
    in_suo = {i["id"] for i in client.get("/desk/queue", headers=suo).json()["items"]}
    assert req["id"] in in_suo
    r = client.post(f"/requests/{req['id']}/redispatch", headers=suo)
    assert r.status_code in (200, 409), r.text  # 409 only if no other team can take it

    # Escalated to the 所, an order leaves the 站's hands.
    late = order(client, resident)
    assert late["area_site_id"] == mine
    escalate_due(session_maker(actors.url), sla={"*": 10.0},
                 now=as_utc(row(actors.url, late["id"]).created_at) + timedelta(minutes=11))
    assert row(actors.url, late["id"]).area_site_id == township
    problem(client.post(f"/requests/{late['id']}/reject", json={"reason": "重复提交"},
                        headers=own), 403, "forbidden")
    r = client.post(f"/requests/{late['id']}/reject", json={"reason": "重复提交"}, headers=suo)
    assert r.status_code == 200, r.text
    assert dispatcher  # dispatchers keep every order (covered above)


def test_a_volunteer_who_leads_the_team_acts_for_it(
    client: TestClient, actors: Actors
) -> None:
    actors.set_demo_teams_active(False)
    team_id = actors.new_team("elderly", capacity=3)
    other_team = actors.new_team("elderly", capacity=3)
    resident, dispatcher = actors.resident(), actors.dispatcher()
    boss, member = leader(actors, team_id), leader(actors, team_id, lead=False)
    req = order(client, resident)
    elsewhere = order(client, resident)
    client.post(f"/requests/{req['id']}/dispatch", json={"team_id": team_id}, headers=dispatcher)
    client.post(f"/requests/{elsewhere['id']}/dispatch", json={"team_id": other_team},
                headers=dispatcher)

    problem(client.post(f"/requests/{req['id']}/accept", headers=member), 403, "forbidden")
    problem(client.post(f"/requests/{elsewhere['id']}/accept", headers=boss), 403, "forbidden")
    listed = client.get("/requests", headers=boss).json()
    assert [i["id"] for i in listed["items"]] == [req["id"]]
    assert listed["items"][0]["contact"] == "13812341234"  # the leader calls the resident
    assert client.get("/requests", headers=member).json()["items"] == []
    problem(client.get(f"/requests/{elsewhere['id']}", headers=boss), 404, "not_found")

    r = client.post(f"/requests/{req['id']}/accept", headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "accepted" and r.json()["team"]["team_id"] == team_id
    assert r.json()["history"][-1]["actor_role"] == "volunteer"
    r = client.post(f"/requests/{req['id']}/complete", json={"hours": 1.5, "note": "已送药"},
                    headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "completed"
