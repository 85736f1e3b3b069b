"""The points store: rewards, redemption for points, pick-up by code once (SQLite and PostGIS).

The races (many redemptions for the last points or the last item, many pick-ups of one code)
run through a real server in tests/api/dispatch/test_reliability.py.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

import geo
from api.services.ledger import credit_activity
from api.settings import get_settings
from api.storage.models import User
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_phone, problem


def rich_volunteer(c: TestClient, db: str, hours: float) -> tuple[int, dict[str, str]]:
    """A volunteer credited with ``hours`` (and their points) through the ledger service."""
    r = c.post("/volunteers", json={"name": "兑换者", "phone": new_phone()})
    assert r.status_code == 201, r.text
    vid = r.json()["volunteer"]["id"]
    if hours:
        with session_maker(db)() as s:
            actor = s.query(User).filter(User.role == "volunteer").order_by(User.id.desc()).first()
            assert actor is not None
            credit_activity(s, vid, hours=hours, activity_id=None, team_id=None, actor=actor)
            s.commit()
    return vid, {"Authorization": f"Bearer {r.json()['token']}"}


def test_redeem_then_pick_up_once(
    client: TestClient, actors: Actors, db: str, district: geo.District,
) -> None:
    admin = actors.user("admin")
    site = str(district.positions["site_id"].iloc[0])
    per_hour = get_settings().points_per_hour
    price = 3 * per_hour
    problem(client.post("/rewards", headers=actors.resident(), json={
        "name": "环保袋", "site_id": site, "price_points": price, "stock": 1}), 403, "forbidden")
    problem(client.post("/rewards", headers=admin, json={
        "name": "环保袋", "site_id": "无此阵地", "price_points": price, "stock": 1}),
        422, "invalid_reward")
    r = client.post("/rewards", headers=admin, json={
        "name": "环保袋", "site_id": site, "price_points": price, "stock": 1})
    assert r.status_code == 201, r.text
    reward = r.json()
    assert client.get("/rewards").json()["items"][0]["id"] == reward["id"]

    _, poor = rich_volunteer(client, db, hours=1)
    body = problem(client.post(f"/rewards/{reward['id']}/redemptions", headers=poor),
                   409, "insufficient_points")
    assert body["balance"] == per_hour and body["price"] == price

    _, rich = rich_volunteer(client, db, hours=4)
    got = client.post(f"/rewards/{reward['id']}/redemptions", headers=rich)
    assert got.status_code == 201, got.text
    code = got.json()["code"]
    assert len(code) == 10 and got.headers["cache-control"] == "no-store"
    assert client.get("/volunteers/me/record", headers=rich).json()["points"] == \
        4 * per_hour - price
    assert client.get("/rewards").json()["items"][0]["stock"] == 0
    problem(client.post(f"/rewards/{reward['id']}/redemptions", headers=rich),
            409, "out_of_stock")

    problem(client.post(f"/redemptions/{code}/pickup", headers=rich), 403, "forbidden")
    done = client.post(f"/redemptions/{code.lower()}/pickup", headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["picked_up_at"] is not None and done.json()["code"] is None
    problem(client.post(f"/redemptions/{code}/pickup", headers=admin), 409, "code_used")
    problem(client.post("/redemptions/ZZZZZZZZZZ/pickup", headers=admin), 404, "not_found")


def test_staff_of_the_position_confirm_pick_ups(
    client: TestClient, actors: Actors, db: str, district: geo.District,
) -> None:
    admin = actors.user("admin")
    here, elsewhere = (str(s) for s in district.positions["site_id"].iloc[:2])
    seated_here = actors.team(actors.new_team("culture", site_id=here))
    seated_elsewhere = actors.team(actors.new_team("culture", site_id=elsewhere))
    reward = client.post("/rewards", headers=admin, json={
        "name": "读书卡", "site_id": here, "price_points": 1, "stock": 5}).json()
    _, me = rich_volunteer(client, db, hours=1)
    code = client.post(f"/rewards/{reward['id']}/redemptions", headers=me).json()["code"]
    problem(client.post(f"/redemptions/{code}/pickup", headers=seated_elsewhere),
            403, "forbidden")
    assert client.post(f"/redemptions/{code}/pickup", headers=seated_here).status_code == 200


def test_a_retried_redemption_is_replayed_not_paid_twice(
    client: TestClient, actors: Actors, db: str, district: geo.District,
) -> None:
    admin = actors.user("admin")
    site, other_site = (str(s) for s in district.positions["site_id"].iloc[:2])
    per_hour = get_settings().points_per_hour
    bag = client.post("/rewards", headers=admin, json={
        "name": "环保袋", "site_id": site, "price_points": per_hour, "stock": 5}).json()
    cup = client.post("/rewards", headers=admin, json={
        "name": "水杯", "site_id": other_site, "price_points": per_hour, "stock": 5}).json()
    _, me = rich_volunteer(client, db, hours=2)
    key = {"Idempotency-Key": "redeem-1"}
    url = f"/rewards/{bag['id']}/redemptions"

    first = client.post(url, headers=me | key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = client.post(url, headers=me | key)  # the phone lost the answer and asks again
    assert again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["cache-control"] == "no-store"
    assert client.get("/volunteers/me/record", headers=me).json()["points"] == per_hour
    assert client.get("/rewards").json()["items"][0]["stock"] == 4

    # The same key for another reward is another request: refused, nothing spent.
    body = problem(client.post(f"/rewards/{cup['id']}/redemptions", headers=me | key),
                   422, "idempotency_conflict")
    assert body["idempotency_key"] == "redeem-1"
    assert client.get("/volunteers/me/record", headers=me).json()["points"] == per_hour

    # A new key is a new redemption; then the points are gone, yet the first key still replays
    # (the stored answer, not insufficient_points).
    second = client.post(url, headers=me | {"Idempotency-Key": "redeem-2"})
    assert second.status_code == 201 and second.json()["code"] != first.json()["code"]
    problem(client.post(url, headers=me | {"Idempotency-Key": "redeem-3"}),
            409, "insufficient_points")
    late = client.post(url, headers=me | key)
    assert late.status_code == 201 and late.json() == first.json()
    assert client.get("/volunteers/me/record", headers=me).json()["points"] == 0

    # Keys belong to their user: another volunteer's "redeem-1" is its own redemption.
    _, other = rich_volunteer(client, db, hours=1)
    theirs = client.post(url, headers=other | key)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


def test_my_redemptions_list_codes_places_and_pick_ups(
    client: TestClient, actors: Actors, db: str, district: geo.District,
) -> None:
    admin = actors.user("admin")
    site, other_site = (str(s) for s in district.positions["site_id"].iloc[:2])
    names = dict(zip(district.positions["site_id"].astype(str), district.positions["name"],
                     strict=True))
    bag = client.post("/rewards", headers=admin, json={
        "name": "环保袋", "site_id": site, "price_points": 2, "stock": 5}).json()
    cup = client.post("/rewards", headers=admin, json={
        "name": "水杯", "site_id": other_site, "price_points": 3, "stock": 5}).json()
    _, me = rich_volunteer(client, db, hours=1)
    _, other = rich_volunteer(client, db, hours=1)
    empty = client.get("/volunteers/me/redemptions", headers=me)
    assert empty.status_code == 200 and empty.json() == {"items": []}
    assert empty.headers["cache-control"] == "no-store"

    got_bag = client.post(f"/rewards/{bag['id']}/redemptions", headers=me).json()
    got_cup = client.post(f"/rewards/{cup['id']}/redemptions", headers=me).json()
    client.post(f"/rewards/{bag['id']}/redemptions", headers=other)
    assert client.post(f"/redemptions/{got_bag['code']}/pickup", headers=admin).status_code == 200

    items = client.get("/volunteers/me/redemptions", headers=me).json()["items"]
    assert [i["id"] for i in items] == [got_cup["id"], got_bag["id"]]  # newest first, mine only
    cup_row, bag_row = items
    assert cup_row["reward_name"] == "水杯" and cup_row["points"] == 3
    assert cup_row["code"] == got_cup["code"] and cup_row["picked_up_at"] is None
    assert cup_row["site_id"] == other_site and cup_row["site_name"] == names[other_site]
    assert cup_row["created_at"] == got_cup["created_at"]
    assert bag_row["reward_name"] == "环保袋" and bag_row["code"] == got_bag["code"]
    assert bag_row["picked_up_at"] is not None and bag_row["site_name"] == names[site]

    problem(client.get("/volunteers/me/redemptions", headers=actors.resident()),
            403, "forbidden")
    problem(client.get("/volunteers/me/redemptions"), 401, "unauthorized")
