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
from tests.api.dispatch.conftest import (  # noqa: F401
    actors,
    app_client,
    client,
    db,
    db_url,
    postgis_url,
)
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import new_phone, problem


def rich_volunteer(c: TestClient, db: str, hours: float) -> tuple[int, dict[str, str]]:  # noqa: F811
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
    client: TestClient, actors: Actors, db: str, district: geo.District,  # noqa: F811
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
    client: TestClient, actors: Actors, db: str, district: geo.District,  # noqa: F811
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
