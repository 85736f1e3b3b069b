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


def team_events(url: str, request_id: int, action: str) -> list[tuple[str, str]]:
    """The team events of one move of an order: (team_id of the recipient, text)."""
    with session_maker(url)() as s:
        rows = s.scalars(select(OutboxEvent).where(
            OutboxEvent.type == f"request.{action}", OutboxEvent.audience == "team")
            .order_by(OutboxEvent.id)).all()
    return [(json.loads(e.subject)["team_id"], e.message_zh) for e in rows
            if json.loads(e.subject)["request_id"] == request_id]


def resident_events(url: str, resident_id: int) -> list[dict[str, Any]]:
    """Every event worded for one resident, oldest first (subject and text)."""
    with session_maker(url)() as s:
        rows = s.scalars(select(OutboxEvent).where(OutboxEvent.audience == "resident")
                         .order_by(OutboxEvent.id)).all()
    out = [{**json.loads(e.subject), "type": e.type, "text": e.message_zh} for e in rows]
    return [e for e in out if e["resident_id"] == resident_id]


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
    # The team it was taken from no longer sees it (404, as GET), and is told not to go.
    problem(client.post(f"/requests/{req['id']}/complete", json={"hours": 1},
                        headers=holder), 404, "not_found")
    problem(client.get(f"/requests/{req['id']}", headers=holder), 404, "not_found")
    lost = team_events(actors.url, req["id"], "redispatch")
    assert lost[-2:] == [  # the second re-dispatch: the new team, then the one it left
        (near, f"新派单 #{req['id']}：敬老助老（改派），请尽快接单"),
        (body["team"]["team_id"], f"服务单 #{req['id']}（敬老助老）已改派给其他队伍，无需前往")]
    # The first re-dispatch told the first team too.
    assert lost[1] == (near, f"服务单 #{req['id']}（敬老助老）已改派给其他队伍，无需前往")
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

    # Outside its area an order is "not found" to every action, as to reading it: the answer
    # is the one for an id that does not exist, naming no area.
    missing = problem(client.post("/requests/999999/dispatch", headers=elsewhere),
                      404, "not_found")
    for action, payload in (("dispatch", None), ("reject", {"reason": "重复提交"}),
                            ("merge", {"into": far["id"]}), ("redispatch", None)):
        body = problem(client.post(f"/requests/{req['id']}/{action}", json=payload,
                                   headers=elsewhere), 404, "not_found")
        assert body.keys() == missing.keys() and "area_site_id" not in body
        assert pos[mine].name not in body["detail"]
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
                        headers=own), 404, "not_found")
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

    # Not theirs to see: answered as a missing id.
    missing = problem(client.post("/requests/999999/accept", headers=member), 404, "not_found")
    for who, rid in ((member, req["id"]), (boss, elsewhere["id"])):
        body = problem(client.post(f"/requests/{rid}/accept", headers=who), 404, "not_found")
        assert body.keys() == missing.keys()
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


def test_station_never_sees_nor_merges_into_orders_outside_its_area(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    a = order(client, resident, "elderly", NEAR_A)
    b = order(client, resident, "elderly", NEAR_B)
    pos = positions(district)
    mine = a["area_site_id"]
    # Put the twin in another 站's area (as where two areas meet): a duplicate pair across it.
    other = next(s for s, p in pos.items() if p.level == "community" and s != mine)
    with session_maker(actors.url)() as s:
        s.execute(update(ServiceRequest).where(ServiceRequest.id == b["id"])
                  .values(area_site_id=other))
        s.commit()
    own = station(actors, mine)

    # The dispatcher sees the pair; the station only its own order, with no duplicate listed.
    items = {i["id"]: i for i in client.get("/desk/queue", headers=dispatcher).json()["items"]}
    assert [d["id"] for d in items[a["id"]]["duplicates"]] == [b["id"]]
    q = client.get("/desk/queue", headers=own).json()
    assert [(i["id"], i["duplicates"]) for i in q["items"]] == [(a["id"], [])]

    # Merging into it is refused as for an id that does not exist, naming no area.
    body = problem(client.post(f"/requests/{a['id']}/merge", json={"into": b["id"]},
                               headers=own), 422, "bad_merge_target")
    gone = problem(client.post(f"/requests/{a['id']}/merge", json={"into": 999999},
                               headers=own), 422, "bad_merge_target")
    assert body["detail"] == gone["detail"].replace("999999", str(b["id"]))
    assert pos[other].name not in body["detail"] and "area_site_id" not in body
    assert row(actors.url, a["id"]).state == "submitted"
    # The dispatcher may merge across areas.
    r = client.post(f"/requests/{a['id']}/merge", json={"into": b["id"]}, headers=dispatcher)
    assert r.status_code == 200, r.text


def test_the_team_that_loses_an_order_is_told_not_to_go(
    client: TestClient, actors: Actors
) -> None:
    actors.set_demo_teams_active(False)
    team_id = actors.new_team("elderly", capacity=5)
    resident, dispatcher = actors.resident(), actors.dispatcher()
    rejected, merged, keep = (order(client, resident, "elderly", at) for at in
                              (HOME, NEAR_A, NEAR_B))
    for req in (rejected, merged):
        r = client.post(f"/requests/{req['id']}/dispatch", json={"team_id": team_id},
                        headers=dispatcher)
        assert r.status_code == 200, r.text
    client.post(f"/requests/{rejected['id']}/reject", json={"reason": "非服务范围"},
                headers=dispatcher)
    client.post(f"/requests/{merged['id']}/merge", json={"into": keep["id"]},
                headers=dispatcher)
    assert team_events(actors.url, rejected["id"], "reject") == [
        (team_id, f"服务单 #{rejected['id']}（敬老助老）已驳回，无需前往")]
    assert team_events(actors.url, merged["id"], "merge") == [
        (team_id, f"服务单 #{merged['id']}（敬老助老）已合并，无需前往")]
    # An order no team held tells no team.
    pooled = order(client, resident)
    client.post(f"/requests/{pooled['id']}/reject", json={"reason": "非服务范围"},
                headers=dispatcher)
    assert team_events(actors.url, pooled["id"], "reject") == []


def test_a_merged_resident_follows_the_kept_order(
    client: TestClient, actors: Actors
) -> None:
    actors.set_demo_teams_active(False)
    team_id = actors.new_team("elderly", capacity=5)
    team = actors.team(team_id)
    first, second, third = actors.resident(), actors.resident(), actors.resident()
    dispatcher = actors.dispatcher()
    dup = order(client, second, "elderly", NEAR_B)
    keep = order(client, first, "elderly", NEAR_A)
    client.post(f"/requests/{dup['id']}/merge", json={"into": keep["id"]}, headers=dispatcher)
    seen = client.get(f"/requests/{dup['id']}", headers=second).json()
    assert seen["merged_into"] == keep["id"] and seen["merged_into_state"] == "submitted"
    assert seen["merged_into_state_zh"] == "已点单（待派单）"
    # The kept order itself stays the first resident's: the second follows it from their own.
    problem(client.get(f"/requests/{keep['id']}", headers=second), 404, "not_found")

    # Escalated, dispatched: the second resident hears of it, worded for their own order.
    escalate_due(session_maker(actors.url), sla={"*": 10.0},
                 now=as_utc(row(actors.url, keep["id"]).created_at) + timedelta(minutes=11))
    client.post(f"/requests/{keep['id']}/dispatch", json={"team_id": team_id},
                headers=dispatcher)
    # The kept order is merged in turn into a third resident's: both follow that one.
    last = order(client, third, "elderly", NEAR_A)
    r = client.post(f"/requests/{keep['id']}/merge", json={"into": last["id"]},
                    headers=dispatcher)
    assert r.status_code == 200, r.text
    client.post(f"/requests/{last['id']}/dispatch", json={"team_id": team_id},
                headers=dispatcher)
    client.post(f"/requests/{last['id']}/accept", headers=team)
    client.post(f"/requests/{last['id']}/complete", json={"hours": 1}, headers=team)
    seen = client.get(f"/requests/{dup['id']}", headers=second).json()
    assert seen["state"] == "merged" and seen["merged_into_state"] == "completed"
    mine = client.get(f"/requests/{keep['id']}", headers=first).json()
    assert mine["merged_into"] == last["id"] and mine["merged_into_state_zh"] == "已完成（待评价）"

    told = resident_events(actors.url, dup["resident_id"])
    texts = [(e["type"], e["request_id"], e.get("merged_request_id"), e["text"]) for e in told]
    kid, did, lid = keep["id"], dup["id"], last["id"]
    assert texts[0][:2] == ("request.create", did)
    assert texts[1] == ("request.merge", did, None,
                        f"您的服务单 #{did} 与服务单 #{kid} 内容相同，已合并处理")
    assert texts[2][:3] == ("request.escalate", kid, did) and "已转由" in texts[2][3]
    assert texts[2][3].startswith(f"您的服务单 #{did} 已并入服务单 #{kid}，该单已转由")
    assert texts[3] == ("request.dispatch", kid, did,
                        f"您的服务单 #{did} 已并入服务单 #{kid}，该单已派单给测试队"
                        f"{team_id.split('-')[1]}")
    assert texts[4] == ("request.merge", kid, did,
                        f"您的服务单 #{did} 已并入服务单 #{kid}，该单已并入服务单 #{lid}")
    assert [t[:3] for t in texts[5:]] == [
        ("request.dispatch", lid, did), ("request.accept", lid, did),
        ("request.complete", lid, did)]
    assert texts[-1][3] == f"您的服务单 #{did} 已并入服务单 #{lid}，该单已完成服务"
    # The first resident follows the third's order too; the third hears of it as their own.
    assert [e["merged_request_id"] for e in resident_events(actors.url,
            keep["resident_id"]) if e["request_id"] == lid and e["type"] == "request.complete"
            ] == [kid]
    assert [e.get("merged_request_id") for e in resident_events(actors.url, last["resident_id"])
            if e["type"] == "request.complete"] == [None]


def test_dispatchers_hear_when_a_kept_order_is_cancelled_under_its_duplicates(
    client: TestClient, actors: Actors
) -> None:
    first, second = actors.resident(), actors.resident()
    dispatcher = actors.dispatcher()
    dup = order(client, second, "elderly", NEAR_B)
    keep = order(client, first, "elderly", NEAR_A)
    client.post(f"/requests/{dup['id']}/merge", json={"into": keep["id"]}, headers=dispatcher)
    r = client.post(f"/requests/{keep['id']}/cancel", headers=first)
    assert r.status_code == 200, r.text
    with session_maker(actors.url)() as s:
        rows = s.scalars(select(OutboxEvent).where(OutboxEvent.audience == "dispatcher",
                                                   OutboxEvent.type == "request.cancel")).all()
    told = [(json.loads(e.subject), e.message_zh) for e in rows]
    assert [(t["request_id"], t["merged_request_ids"]) for t, _ in told] == [
        (keep["id"], [dup["id"]])]
    assert f"#{dup['id']} 仍待服务" in told[0][1]
    # the duplicate's resident is told too, from their own order
    assert resident_events(actors.url, dup["resident_id"])[-1]["text"] == (
        f"您的服务单 #{dup['id']} 已并入服务单 #{keep['id']}，该单已取消")


def test_open_orders_from_before_the_area_rules_are_placed_at_start(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    from api.services.dispatch_setup import prepare_dispatch

    resident, dispatcher = actors.resident(), actors.dispatcher()
    old, done = order(client, resident), order(client, resident, at=NEAR_A)
    client.post(f"/requests/{done['id']}/cancel", headers=resident)
    with session_maker(actors.url)() as s:  # as 0007 left the orders made before it
        s.execute(update(ServiceRequest).values(level=None, area_site_id=None,
                                                level_since=None))
        s.commit()
    assert client.get(f"/requests/{old['id']}", headers=dispatcher).json()["level"] is None

    assert prepare_dispatch(district, session_maker(actors.url)) == 1
    placed, closed = row(actors.url, old["id"]), row(actors.url, done["id"])
    assert (placed.level, placed.area_site_id) == ("community", old["area_site_id"])
    assert as_utc(placed.level_since) == as_utc(placed.created_at)  # it has waited since then
    assert placed.version == 1  # no move was made: nobody's move is refused for it
    assert closed.level is None  # closed orders are history: left as they were
    assert prepare_dispatch(district, session_maker(actors.url)) == 0
    # Now the station sees it and it escalates when overdue.
    assert [i["id"] for i in client.get("/desk/queue", headers=station(
        actors, old["area_site_id"])).json()["items"]] == [old["id"]]
    moved = escalate_due(session_maker(actors.url), sla={"*": 10.0},
                         now=as_utc(placed.created_at) + timedelta(minutes=11))
    assert [m.request_id for m in moved] == [old["id"]]


def test_escalations_are_recorded_under_the_system_user(
    client: TestClient, actors: Actors
) -> None:
    from api.services.escalation import system_user
    from api.storage.models import User

    resident = actors.resident()
    reqs = [order(client, resident), order(client, resident, at=NEAR_A)]
    factory = session_maker(actors.url)
    t0 = as_utc(row(actors.url, reqs[1]["id"]).created_at)
    escalate_due(factory, sla={"*": 10.0}, now=t0 + timedelta(minutes=11))
    escalate_due(factory, sla={"*": 10.0}, now=t0 + timedelta(minutes=22))
    with factory() as s:
        bots = s.scalars(select(User).where(User.role == "system")).all()
        assert len(bots) == 1 and bots[0].name == "系统" and not bots[0].active
        assert bots[0].phone_hash is None
        assert s.scalars(select(User).where(User.role == "admin")).all() == []
        # Two creators raced (two workers' first passes): the lowest id is used from then on.
        s.add(User(name="系统", role="system", active=False, token_hash="f" * 64))
        s.flush()
        bot_id = bots[0].id
        assert system_user(s).id == bot_id
        s.rollback()
    for req in reqs:
        mine = client.get(f"/requests/{req['id']}", headers=resident).json()
        ups = [h for h in mine["history"] if h["action"] == "escalate"]
        assert len(ups) == 2 and {h["actor_role"] for h in ups} == {"system"}
        assert {h["actor_id"] for h in ups} == {bot_id}


def test_a_volunteer_orders_reads_cancels_and_reviews_as_a_resident(
    client: TestClient, actors: Actors
) -> None:
    actors.set_demo_teams_active(False)
    team_id = actors.new_team("elderly", capacity=5)
    team = actors.team(team_id)
    boss, other_volunteer = leader(actors, team_id), leader(actors, team_id, lead=False)
    resident, dispatcher = actors.resident(), actors.dispatcher()

    own = order(client, boss)
    assert own["state"] == "submitted" and own["contact_masked"]  # as any resident sees it
    spare = order(client, boss, at=NEAR_A)
    theirs = order(client, resident)
    elsewhere = order(client, other_volunteer)
    client.post(f"/requests/{theirs['id']}/dispatch", json={"team_id": team_id},
                headers=dispatcher)
    # Their own orders and those of the team they lead; not another volunteer's.
    listed = client.get("/requests", headers=boss).json()
    assert sorted(i["id"] for i in listed["items"]) == sorted(
        [own["id"], spare["id"], theirs["id"]])
    problem(client.get(f"/requests/{elsewhere['id']}", headers=boss), 404, "not_found")
    problem(client.post(f"/requests/{elsewhere['id']}/cancel", headers=boss), 404, "not_found")
    # A leader takes no order from the pool, their own neither: that is the team account's.
    body = problem(client.post(f"/requests/{own['id']}/accept", headers=boss), 403,
                   "forbidden")
    assert "队伍账号抢单" in body["detail"]
    # They cancel their own order, not the resident's their team serves.
    body = problem(client.post(f"/requests/{theirs['id']}/cancel", headers=boss), 403,
                   "forbidden")
    assert "本人" in body["detail"]
    r = client.post(f"/requests/{spare['id']}/cancel", headers=boss)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    assert r.json()["history"][-1]["actor_role"] == "volunteer"

    # Served by their own team's account, then reviewed by them as the resident.
    client.post(f"/requests/{own['id']}/dispatch", json={"team_id": team_id},
                headers=dispatcher)
    client.post(f"/requests/{own['id']}/accept", headers=team)
    client.post(f"/requests/{own['id']}/complete", json={"hours": 1}, headers=team)
    r = client.post(f"/requests/{own['id']}/review", json={"stars": 5, "comment": "很好"},
                    headers=boss)
    assert r.status_code == 200 and r.json()["state"] == "reviewed", r.text
    # The resident's order, completed by the team, is the resident's to review, not the leader's.
    client.post(f"/requests/{theirs['id']}/accept", headers=boss)
    client.post(f"/requests/{theirs['id']}/complete", json={"hours": 1}, headers=boss)
    body = problem(client.post(f"/requests/{theirs['id']}/review", json={"stars": 1},
                               headers=boss), 403, "forbidden")
    r = client.post(f"/requests/{theirs['id']}/review", json={"stars": 4}, headers=resident)
    assert r.status_code == 200, r.text
