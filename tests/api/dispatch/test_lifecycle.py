"""The 点单-派单-接单-评单 lifecycle through the app, on SQLite and on PostGIS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import geo
from tests.api.dispatch.helpers import HOME, Actors, new_request

PROBLEM = "application/problem+json"


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["title"] and body["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["title"] + body["detail"])  # zh-CN
    return body


def test_whole_lifecycle_with_history_masking_points(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    r = client.post("/requests", json=new_request("elderly"), headers=resident)
    assert r.status_code == 201, r.text
    req = r.json()
    assert r.headers["location"] == f"/requests/{req['id']}"
    assert req["state"] == "submitted" and req["contact"] == "138****1234"
    assert req["contact_masked"] and req["category_zh"] == "敬老助老"
    rid = req["id"]

    ranking = client.get("/teams/nearest", params={
        "lon": HOME[0], "lat": HOME[1], "category": "elderly", "eligible_only": True}).json()
    expected_team = ranking["teams"][0]["team_id"]

    r = client.post(f"/requests/{rid}/dispatch", headers=dispatcher)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "dispatched" and body["team"]["team_id"] == expected_team
    assert body["contact"] == "13812341234"  # the dispatcher sees it
    team = actors.team(expected_team)
    other_team = actors.team(str(district.teams["team_id"].iloc[-1]))
    assert client.get(f"/requests/{rid}", headers=team).json()["contact"] == "13812341234"
    # Another team does not read a request dispatched elsewhere at all.
    problem(client.get(f"/requests/{rid}", headers=other_team), 404, "not_found")
    assert client.get(f"/requests/{rid}", headers=resident).json()["contact"] == "138****1234"

    assert client.post(f"/requests/{rid}/accept", headers=team).json()["state"] == "accepted"
    r = client.post(f"/requests/{rid}/complete", json={"hours": 2.5}, headers=team)
    assert r.json()["state"] == "completed" and r.json()["hours"] == 2.5
    r = client.post(f"/requests/{rid}/review", json={"stars": 5, "comment": "谢谢"},
                    headers=resident)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "reviewed" and done["review"]["stars"] == 5
    assert done["next_actions"] == []
    steps = [(h["action"], h["from_state"], h["to_state"]) for h in done["history"]]
    assert steps == [
        ("create", None, "submitted"), ("dispatch", "submitted", "dispatched"),
        ("accept", "dispatched", "accepted"), ("complete", "accepted", "completed"),
        ("review", "completed", "reviewed"),
    ]
    roles = [h["actor_role"] for h in done["history"]]
    assert roles == ["resident", "dispatcher", "team", "team", "resident"]

    board = client.get("/leaderboard", params={"limit": 5}).json()
    top = board["teams"][0]
    assert top["team_id"] == expected_team
    assert top["points"] == 25 + 10 and top["hours"] == 2.5  # 10/hour + 2/star
    assert top["completed"] == 1 and top["reviews"] == 1 and top["rating"] == 5
    assert top["star_level"] == 0 and top["star_level_zh"] == "未评星"

    # Every move after the end is refused with the current state.
    for action, payload in (("accept", None), ("cancel", {}), ("review", {"stars": 3})):
        who = team if action == "accept" else resident
        r = client.post(f"/requests/{rid}/{action}", json=payload, headers=who)
        body = problem(r, 409, "invalid_transition")
        assert body["state"] == "reviewed" and body["allowed_actions"] == []


def test_decline_returns_to_pool_and_auto_dispatch_skips_that_team(
    client: TestClient, actors: Actors
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    rid = client.post("/requests", json=new_request("health"), headers=resident).json()["id"]
    first = client.post(f"/requests/{rid}/dispatch", headers=dispatcher).json()["team"]["team_id"]
    team = actors.team(first)
    r = client.post(f"/requests/{rid}/decline", json={"reason": "人手不足"}, headers=team)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "submitted" and r.json()["round"] == 1
    assert r.json()["team"] is None
    # Free again, the declining team is still the nearest eligible health team: only the
    # decline keeps it from getting the request back.
    ranking = client.get("/teams/nearest", params={
        "lon": HOME[0], "lat": HOME[1], "category": "health", "eligible_only": True}).json()
    assert ranking["teams"][0]["team_id"] == first
    # It may not take the request back: not by grabbing it from the pool, nor when named.
    body = problem(client.post(f"/requests/{rid}/accept", headers=team), 409,
                   "team_unavailable")
    assert body["team_id"] == first and body["reasons"] == ["declined"]
    body = problem(client.post(f"/requests/{rid}/dispatch", json={"team_id": first},
                               headers=dispatcher), 409, "team_unavailable")
    assert body["reasons"] == ["declined"]
    after = client.get(f"/requests/{rid}", headers=resident).json()
    assert after["state"] == "submitted" and after["team"] is None
    # Auto-dispatch passes it over for the next nearest.
    r = client.post(f"/requests/{rid}/dispatch", headers=dispatcher)
    assert r.status_code == 200, r.text
    second = r.json()["team"]["team_id"]
    assert second != first
    assert second == next(t["team_id"] for t in ranking["teams"] if t["team_id"] != first)
    # Dispatched elsewhere, it is not the declining team's to see, nor to accept.
    problem(client.post(f"/requests/{rid}/accept", headers=team), 404, "not_found")
    r = client.post(f"/requests/{rid}/cancel", headers=dispatcher)
    assert r.json()["state"] == "cancelled"
    history = [h["action"] for h in r.json()["history"]]
    assert history == ["create", "dispatch", "decline", "dispatch", "cancel"]


def test_a_team_that_declined_is_never_sent_the_request_again(
    client: TestClient, actors: Actors
) -> None:
    """With the declining team the only one of its category, nobody is left to dispatch to."""
    resident, dispatcher = actors.resident(), actors.dispatcher()
    actors.set_demo_teams_active(False)
    only = actors.new_team("science", capacity=3)
    team = actors.team(only)
    rid = client.post("/requests", json=new_request("science"), headers=resident).json()["id"]
    r = client.post(f"/requests/{rid}/dispatch", headers=dispatcher)
    assert r.status_code == 200 and r.json()["team"]["team_id"] == only, r.text
    r = client.post(f"/requests/{rid}/decline", json={"reason": "没空"}, headers=team)
    assert r.status_code == 200, r.text
    body = problem(client.post(f"/requests/{rid}/dispatch", headers=dispatcher), 409,
                   "no_eligible_team")
    assert body["considered"] >= 1
    body = problem(client.post(f"/requests/{rid}/accept", headers=team), 409,
                   "team_unavailable")
    assert body["reasons"] == ["declined"]
    # Still open for another team of the category, which may grab it from the pool.
    other = actors.new_team("science")
    r = client.post(f"/requests/{rid}/accept", headers=actors.team(other))
    assert r.status_code == 200 and r.json()["team"]["team_id"] == other, r.text


def test_roles_and_ownership(client: TestClient, actors: Actors, district: geo.District) -> None:
    alice, bob, dispatcher = actors.resident(), actors.resident(), actors.dispatcher()
    team_id = str(district.teams.query("active and category == 'elderly'")["team_id"].iloc[0])
    team = actors.team(team_id)
    rid = client.post("/requests", json=new_request(), headers=alice).json()["id"]
    client.post("/requests", json=new_request(), headers=bob)

    problem(client.get(f"/requests/{rid}", headers=bob), 404, "not_found")
    problem(client.post(f"/requests/{rid}/cancel", headers=bob), 404, "not_found")
    mine = client.get("/requests", headers=alice).json()
    assert mine["count"] == 1 and mine["items"][0]["id"] == rid
    assert client.get("/requests", headers=dispatcher).json()["count"] == 2

    problem(client.post("/requests", json=new_request(), headers=dispatcher), 403, "forbidden")
    problem(client.post(f"/requests/{rid}/dispatch", headers=alice), 403, "forbidden")
    problem(client.post(f"/requests/{rid}/dispatch", headers=team), 403, "forbidden")
    problem(client.post(f"/requests/{rid}/review", json={"stars": 4}, headers=dispatcher),
            403, "forbidden")
    # Another team may not accept a request dispatched to someone else: it does not see it,
    # and is answered as for an id that does not exist.
    r = client.post(f"/requests/{rid}/dispatch", json={"team_id": team_id}, headers=dispatcher)
    assert r.status_code == 200, r.text
    other_id = district.teams[(district.teams.team_id != team_id)]["team_id"].iloc[0]
    other = actors.team(str(other_id))
    hidden = problem(client.post(f"/requests/{rid}/accept", headers=other), 404, "not_found")
    missing = problem(client.post("/requests/999999/accept", headers=other), 404, "not_found")
    assert hidden.keys() == missing.keys() and hidden["title"] == missing["title"]
    problem(client.post(f"/requests/{rid}/complete", json={"hours": 1}, headers=team),
            409, "invalid_transition")


def test_team_reads_only_its_own_and_its_open_pool(
    client: TestClient, actors: Actors, district: geo.District
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    teams = district.teams.query("active")
    elderly = str(teams[teams.category == "elderly"]["team_id"].iloc[0])
    theory = str(teams[teams.category == "theory"]["team_id"].iloc[0])
    rid = client.post("/requests", json=new_request("elderly"), headers=resident).json()["id"]
    # Open pool of its category: readable; another category's team: not found.
    assert client.get(f"/requests/{rid}", headers=actors.team(elderly)).status_code == 200
    problem(client.get(f"/requests/{rid}", headers=actors.team(theory)), 404, "not_found")
    # Once dispatched to one team, other teams of the category no longer read it.
    other_elderly = teams[(teams.category == "elderly") & (teams.team_id != elderly)]
    r = client.post(f"/requests/{rid}/dispatch", json={"team_id": elderly}, headers=dispatcher)
    assert r.status_code == 200, r.text
    assert client.get(f"/requests/{rid}", headers=actors.team(elderly)).status_code == 200
    assert len(other_elderly) > 0  # the demo registry has several elderly teams
    other = actors.team(str(other_elderly.team_id.iloc[0]))
    problem(client.get(f"/requests/{rid}", headers=other), 404, "not_found")


def test_unauthorized(client: TestClient) -> None:
    r = client.post("/requests", json=new_request())
    problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(client.get("/requests/1", headers={"Authorization": "Bearer pc_nope"}),
            401, "unauthorized")


def test_input_errors(client: TestClient, actors: Actors) -> None:
    resident = actors.resident()
    body = problem(client.post("/requests", json=new_request("karaoke"), headers=resident),
                   422, "unknown_category")
    assert "elderly" in body["detail"]
    body = problem(client.post("/requests", json=new_request(lon=112.0, lat=37.0),
                               headers=resident), 422, "out_of_area")
    assert "米" in body["detail"]
    problem(client.post("/requests", json={**new_request(), "contact": "call me"},
                        headers=resident), 422, "invalid_request")
    problem(client.get("/requests/999999", headers=resident), 404, "not_found")
    rid = client.post("/requests", json=new_request(), headers=resident).json()["id"]
    problem(client.post(f"/requests/{rid}/cancel", json={"reason": "x" * 501},
                        headers=resident), 422, "invalid_request")


def test_capacity_and_named_dispatch(client: TestClient, actors: Actors) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    team_id = actors.new_team("legal", capacity=1)
    asleep = actors.new_team("legal", capacity=3, active=False)
    ids = [client.post("/requests", json=new_request("legal"), headers=resident).json()["id"]
           for _ in range(2)]
    r = client.post(f"/requests/{ids[0]}/dispatch", json={"team_id": team_id}, headers=dispatcher)
    assert r.status_code == 200 and r.json()["team"]["team_id"] == team_id
    body = problem(client.post(f"/requests/{ids[1]}/dispatch", json={"team_id": team_id},
                               headers=dispatcher), 409, "team_unavailable")
    assert body["reasons"] == ["capacity"]
    body = problem(client.post(f"/requests/{ids[1]}/dispatch", json={"team_id": asleep},
                               headers=dispatcher), 409, "team_unavailable")
    assert body["reasons"] == ["inactive"]
    problem(client.post(f"/requests/{ids[1]}/dispatch", json={"team_id": "nope"},
                        headers=dispatcher), 404, "not_found")
    ranking = client.get("/teams/nearest", params={
        "lon": HOME[0], "lat": HOME[1], "category": "legal", "limit": 200}).json()
    by_id = {t["team_id"]: t for t in ranking["teams"]}
    assert by_id[team_id]["reasons"] == ["capacity"] and not by_id[team_id]["eligible"]
    assert by_id[team_id]["open_requests"] == 1 and by_id[team_id]["free_capacity"] == 0
    assert by_id[asleep]["reasons"] == ["inactive"]
    # Cancelling frees the place.
    client.post(f"/requests/{ids[0]}/cancel", headers=resident)
    r = client.post(f"/requests/{ids[1]}/dispatch", json={"team_id": team_id}, headers=dispatcher)
    assert r.status_code == 200, r.text


def test_no_eligible_team(client: TestClient, actors: Actors) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    actors.set_demo_teams_active(False)
    rid = client.post("/requests", json=new_request("science"), headers=resident).json()["id"]
    body = problem(client.post(f"/requests/{rid}/dispatch", headers=dispatcher),
                   409, "no_eligible_team")
    assert body["considered"] > 0
    assert client.get(f"/requests/{rid}", headers=resident).json()["state"] == "submitted"


def test_idempotent_create_and_transition(client: TestClient, actors: Actors) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    key = {"Idempotency-Key": "create-1"}
    first = client.post("/requests", json=new_request(), headers=resident | key)
    again = client.post("/requests", json=new_request(), headers=resident | key)
    assert first.status_code == again.status_code == 201
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert client.get("/requests", headers=resident).json()["count"] == 1
    body = problem(client.post("/requests", json=new_request(description="另一件事"),
                               headers=resident | key), 422, "idempotency_conflict")
    assert body["idempotency_key"] == "create-1"
    # Keys belong to their user: another resident may use the same one.
    other = client.post("/requests", json=new_request(), headers=actors.resident() | key)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]

    rid = first.json()["id"]
    key = {"Idempotency-Key": "dispatch-1"}
    d1 = client.post(f"/requests/{rid}/dispatch", headers=dispatcher | key)
    d2 = client.post(f"/requests/{rid}/dispatch", headers=dispatcher | key)
    assert d1.status_code == d2.status_code == 200 and d1.json() == d2.json()
    # Without the key the retry is a second dispatch: refused, the state unchanged.
    problem(client.post(f"/requests/{rid}/dispatch", headers=dispatcher), 409,
            "invalid_transition")
    problem(client.post(f"/requests/{rid}/cancel", headers=dispatcher | key), 422,
            "idempotency_conflict")


def test_list_filters_state_and_bbox(client: TestClient, actors: Actors) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    near = client.post("/requests", json=new_request(), headers=resident).json()
    far = client.post("/requests", json=new_request(lon=HOME[0] + 0.02, lat=HOME[1] + 0.01),
                      headers=resident).json()
    client.post(f"/requests/{far['id']}/cancel", headers=resident)
    box = f"{HOME[0] - 0.001},{HOME[1] - 0.001},{HOME[0] + 0.001},{HOME[1] + 0.001}"
    inside = client.get("/requests", params={"bbox": box}, headers=dispatcher).json()
    assert [i["id"] for i in inside["items"]] == [near["id"]]
    cancelled = client.get("/requests", params={"state": "cancelled"}, headers=dispatcher).json()
    assert [i["id"] for i in cancelled["items"]] == [far["id"]]
    problem(client.get("/requests", params={"bbox": "1,2,3"}, headers=dispatcher), 422,
            "invalid_request")


def test_categories_and_me(client: TestClient, actors: Actors) -> None:
    cats = client.get("/categories").json()
    assert cats["core"] == 8 and cats["count"] == 8 + cats["local"] and cats["local"] >= 1
    assert {"code": "elderly", "name": "敬老助老"}.items() <= next(
        c for c in cats["categories"] if c["code"] == "elderly").items()
    me = client.get("/users/me", headers=actors.dispatcher()).json()
    assert me["role"] == "dispatcher" and me["team_id"] is None


@pytest.mark.parametrize("stars", [0, 6])
def test_review_stars_bounded(client: TestClient, actors: Actors, stars: int) -> None:
    resident = actors.resident()
    rid = client.post("/requests", json=new_request(), headers=resident).json()["id"]
    problem(client.post(f"/requests/{rid}/review", json={"stars": stars}, headers=resident),
            422, "invalid_request")
