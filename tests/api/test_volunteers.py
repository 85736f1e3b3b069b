"""Volunteers register, join teams, and each caller sees only what it may (SQLite and PostGIS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import geo
from api.services.volunteers import id_card_cipher
from api.storage.models import Volunteer
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_phone, new_volunteer, problem

#: The worked example of GB 11643-1999 (appendix): its check character is X.
GB_EXAMPLE_ID = "11010519491231002X"


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643 states it: weights 2^(17-i) mod 11, then 12 - sum mod 11."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    return "10X98765432"[total % 11]


#: A birth month 13 with the right check character: only the date can fail it.
MONTH_13 = "11010519491331002" + check_character("11010519491331002")


def register(c: TestClient, **extra: Any) -> Any:
    body = {"name": "王志愿", "phone": new_phone(), "categories": ["health"], **extra}
    return c.post("/volunteers", json=body)




def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_standards_example_is_valid() -> None:
    assert check_character(GB_EXAMPLE_ID[:17]) == GB_EXAMPLE_ID[-1]


def test_register_masks_phone_and_encrypts_the_id_card(
    client: TestClient, db: str,
) -> None:
    number = new_phone()
    r = register(client, phone=f"+86 {number[:3]}-{number[3:7]}-{number[7:]}",
                 id_card=GB_EXAMPLE_ID)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("pc_")
    me = body["volunteer"]
    assert me["phone"] == f"{number[:3]}****{number[-4:]}"
    assert me["id_card"] == "1" + "*" * 16 + "X"
    assert number not in r.text and GB_EXAMPLE_ID not in r.text
    assert r.headers["cache-control"] == "no-store"

    again = client.get("/volunteers/me", headers=bearer(body["token"]))
    assert again.status_code == 200, again.text
    assert again.json()["phone"] == me["phone"] and again.json()["categories"] == ["health"]
    assert again.json()["created_at"] == me["created_at"]  # UTC, read back from either database
    assert number not in again.text and GB_EXAMPLE_ID not in again.text

    with session_maker(db)() as s:
        row = s.scalars(select(Volunteer).where(Volunteer.id == me["id"])).one()
        assert row.phone == number
        assert row.id_card_cipher is not None and GB_EXAMPLE_ID not in row.id_card_cipher
        assert id_card_cipher().decrypt(row.id_card_cipher.encode()).decode() == GB_EXAMPLE_ID


@pytest.mark.parametrize(("extra", "status", "code", "field"), [
    ({"phone": "12345678901"}, 422, "invalid_volunteer", "phone"),
    ({"phone": "0351-12345678"}, 422, "invalid_volunteer", "phone"),  # a landline
    ({"phone": "+1 415 555 2671"}, 422, "invalid_volunteer", "phone"),
    ({"id_card": GB_EXAMPLE_ID[:17] + "1"}, 422, "invalid_volunteer", "id_card"),
    ({"id_card": MONTH_13}, 422, "invalid_volunteer", "id_card"),
    ({"categories": ["knitting"]}, 422, "unknown_category", None),
])
def test_bad_registrations_are_refused_in_chinese(
    client: TestClient, db: str,
    extra: dict[str, Any], status: int, code: str, field: str | None,
) -> None:
    body = problem(register(client, **extra), status, code)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    if field:
        assert body["field"] == field
    if "id_card" in extra:
        assert extra["id_card"] not in body["detail"]
    with session_maker(db)() as s:
        assert s.scalar(select(Volunteer.id)) is None  # nothing half-made


def test_a_phone_registers_once_per_district(
    client: TestClient, db: str,
) -> None:
    number = new_phone()
    assert register(client, phone=number).status_code == 201
    problem(register(client, phone=number, name="另一人"), 409, "already_registered")


def test_only_admins_and_the_teams_leader_see_the_whole_phone(
    client: TestClient, actors: Actors,
    district: geo.District,
) -> None:
    team_id = actors.new_team("health")
    admin = actors.user("admin")
    numbers = [new_phone() for _ in range(3)]
    made = [register(client, phone=n, name=f"队员{i}").json() for i, n in enumerate(numbers)]
    leader, member, outsider = (m["volunteer"]["id"] for m in made)
    tokens = [bearer(m["token"]) for m in made]

    # Only an admin names a leader; then the leader adds members, not leaders.
    problem(client.post(f"/teams/{team_id}/members", headers=tokens[0],
                        json={"volunteer_id": leader, "leader": True}), 403, "forbidden")
    r = client.post(f"/teams/{team_id}/members", headers=admin,
                    json={"volunteer_id": leader, "leader": True})
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == numbers[0]  # the admin reads it whole
    r = client.post(f"/teams/{team_id}/members", headers=tokens[0],
                    json={"volunteer_id": member})
    assert r.status_code == 201, r.text
    problem(client.post(f"/teams/{team_id}/members", headers=tokens[0],
                        json={"volunteer_id": outsider, "leader": True}), 403, "forbidden")

    listed = client.get(f"/teams/{team_id}/members", headers=tokens[0])
    assert listed.status_code == 200, listed.text
    assert {v["phone"] for v in listed.json()["items"]} == {numbers[0], numbers[1]}
    problem(client.get(f"/teams/{team_id}/members", headers=tokens[1]), 403, "forbidden")

    assert client.get(f"/volunteers/{member}", headers=tokens[0]).json()["phone"] == numbers[1]
    own = client.get(f"/volunteers/{member}", headers=tokens[1]).json()
    assert own["phone"] == f"{numbers[1][:3]}****{numbers[1][-4:]}"
    assert own["teams"] == [{"team_id": team_id, "name": own["teams"][0]["name"],
                             "leader": False}]
    problem(client.get(f"/volunteers/{member}", headers=tokens[2]), 404, "not_found")
    problem(client.get("/volunteers/me", headers=actors.resident()), 403, "forbidden")


def test_my_signups_list_state_waitlist_place_and_attendance(
    client: TestClient, actors: Actors, district: geo.District,
) -> None:
    admin = actors.user("admin")
    positions = district.positions.iloc[:2]
    (here, there) = (str(s) for s in positions["site_id"])
    names = dict(zip(positions["site_id"].astype(str), positions["name"], strict=True))
    now = datetime.now(UTC)

    def publish(title: str, site_id: str, starts_in: timedelta, capacity: int = 5) -> int:
        start = now + starts_in
        r = client.post("/activities", headers=admin, json={
            "title": title, "category": "health", "site_id": site_id, "capacity": capacity,
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    running = publish("社区义诊", here, -timedelta(minutes=10))
    full = publish("敬老探访", there, timedelta(days=1), capacity=1)
    dropped = publish("读书会", there, timedelta(days=2))
    _, me = new_volunteer(client, "报名者")
    _, first = new_volunteer(client, "先到者")
    assert client.post(f"/activities/{full}/signups", headers=first).json()["state"] == \
        "confirmed"
    for aid in (running, full, dropped):
        assert client.post(f"/activities/{aid}/signups", headers=me).status_code == 201
    assert client.delete(f"/activities/{dropped}/signups", headers=me).status_code == 200
    code = client.get(f"/activities/{running}/checkin-code", headers=admin).json()["code"]
    spot = positions.geometry.iloc[0]
    where = {"code": code, "lon": spot.x, "lat": spot.y}
    assert client.post(f"/activities/{running}/checkins", headers=me, json=where).status_code \
        == 201
    assert client.post(f"/activities/{running}/checkouts", headers=me, json=where).status_code \
        == 200

    r = client.get("/volunteers/me/signups", headers=me)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    items = r.json()["items"]
    assert [i["activity_id"] for i in items] == [dropped, full, running]  # latest first
    late, waiting, done = items
    assert late["state"] == "cancelled" and late["state_name"] == "已取消"
    assert late["waitlist_place"] is None and late["checked_in"] is False
    assert waiting["state"] == "waitlisted" and waiting["waitlist_place"] == 1
    assert waiting["title"] == "敬老探访" and waiting["site_name"] == names[there]
    assert waiting["checked_in"] is False and waiting["checkin_at"] is None
    assert done["state"] == "confirmed" and done["state_name"] == "已报名"
    assert done["site_id"] == here and done["category_name"]
    assert done["checked_in"] is True and done["checked_out"] is True
    assert done["checkin_at"] <= done["checkout_at"]
    assert datetime.fromisoformat(done["starts_at"]) == \
        datetime.fromisoformat(client.get(f"/activities/{running}").json()["starts_at"])
    assert done["activity_cancelled"] is False

    theirs = client.get("/volunteers/me/signups", headers=first).json()["items"]
    assert [(i["activity_id"], i["state"]) for i in theirs] == [(full, "confirmed")]
    problem(client.get("/volunteers/me/signups", headers=actors.resident()), 403, "forbidden")
    problem(client.get("/volunteers/me/signups"), 401, "unauthorized")
