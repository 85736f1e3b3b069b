"""Races and a crash through a real uvicorn server (two worker processes), SQLite and PostGIS."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import geo
from api.services.ledger import credit_activity, points_balance
from api.settings import get_settings
from api.storage.models import (
    Activity,
    PointsLine,
    Redemption,
    Reward,
    ServiceRequest,
    Signup,
    User,
    Volunteer,
)
from api.storage.session import get_engine, session_maker
from tests.api.dispatch.helpers import Actors, Server, new_request, reset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    db_url: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    # Races and a crash, not limits (tests/api/test_security.py has those): the crash test's
    # one resident creates 60+ requests in seconds, at the default per-token write limit (60 a
    # minute in each worker), so some could be answered 429.
    srv = Server(url=db_url, cache=cache_dir, log=log, workers=2,
                 env={"PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false"}).start()
    yield srv
    srv.stop()


def race(n: int, call: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """Run ``n`` calls at the same moment, each on its own connection."""
    barrier = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            barrier.wait()
            return call(c, i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_twenty_teams_accept_one_request(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    tokens = [actors.team(actors.new_team("elderly")) for _ in range(20)]
    resident = actors.resident()
    r = httpx.post(server.base + "/requests", json=new_request("elderly"), headers=resident)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    answers = race(20, lambda c, i: c.post(f"{server.base}/requests/{rid}/accept",
                                           headers=tokens[i]))
    statuses = Counter(a.status_code for a in answers)
    # The losers find it gone from their pool: another team's order, not theirs to see (404).
    assert statuses == {200: 1, 404: 19}, [a.text for a in answers if a.status_code != 404]
    for a in answers:
        if a.status_code == 404:
            assert a.json()["code"] == "not_found"
    winner = next(a for a in answers if a.status_code == 200).json()["team"]["team_id"]
    final = httpx.get(f"{server.base}/requests/{rid}", headers=resident).json()
    assert final["state"] == "accepted" and final["team"]["team_id"] == winner
    assert [h["action"] for h in final["history"]] == ["create", "accept"]


def test_one_team_never_exceeds_its_capacity(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    team = actors.team(actors.new_team("legal", capacity=2))
    resident = actors.resident()
    ids = [httpx.post(server.base + "/requests", json=new_request("legal"),
                      headers=resident).json()["id"] for _ in range(10)]
    answers = race(10, lambda c, i: c.post(f"{server.base}/requests/{ids[i]}/accept",
                                           headers=team))
    assert Counter(a.status_code for a in answers) == {200: 2, 409: 8}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"team_unavailable"}


def test_concurrent_auto_dispatch_fills_each_team_once(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    actors.set_demo_teams_active(False)
    sites = district.positions.iloc[[0, len(district.positions) // 2, -1]]
    for site_id in sites["site_id"]:
        actors.new_team("culture", site_id=str(site_id), capacity=1)
    resident, dispatcher = actors.resident(), actors.dispatcher()
    ids = []
    for i in range(9):  # near each team in turn: every dispatcher prefers another order
        p = sites.geometry.iloc[i % 3]
        r = httpx.post(server.base + "/requests", headers=resident,
                       json=new_request("culture", lon=p.x, lat=p.y))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    answers = race(9, lambda c, i: c.post(f"{server.base}/requests/{ids[i]}/dispatch",
                                          headers=dispatcher))
    assert Counter(a.status_code for a in answers) == {200: 3, 409: 6}, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"no_eligible_team"}
    assert len({a.json()["team"]["team_id"] for a in answers if a.status_code == 200}) == 3


def test_concurrent_retries_of_one_key_create_once(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    resident = actors.resident() | {"Idempotency-Key": "same-key"}
    answers = race(12, lambda c, i: c.post(server.base + "/requests", json=new_request(),
                                           headers=resident))
    assert {a.status_code for a in answers} == {201}
    bodies: list[dict[str, Any]] = [a.json() for a in answers]
    assert len({b["id"] for b in bodies}) == 1
    assert len({a.headers["location"] for a in answers}) == 1
    listed = httpx.get(server.base + "/requests", headers=resident).json()
    assert listed["count"] == 1
    reset(db, district)


def test_sigkill_while_creating_loses_no_acknowledged_request(
    server: Server, db: str, district: geo.District, backend: str
) -> None:
    """Runs last in the module: it kills the module's server and leaves a restarted one."""
    actors = Actors(db, district)
    resident = actors.resident()
    acked: dict[str, int] = {}  # description -> id, for every 201
    unanswered: list[str] = []
    refused: list[httpx.Response] = []  # any answer but 201 (an assert in a thread is lost)
    lock, stop = threading.Lock(), threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.base, timeout=30, headers=resident) as c:
            i = 0
            while not stop.is_set():
                desc = f"crash-{n}-{i}"
                i += 1
                try:
                    r = c.post("/requests", json=new_request(description=desc),
                               headers={"Idempotency-Key": desc})
                except httpx.HTTPError:
                    with lock:
                        unanswered.append(desc)
                    return
                with lock:
                    if r.status_code != 201:
                        refused.append(r)
                        return
                    acked[desc] = r.json()["id"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL mid-stream: no shutdown, no flush
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not refused, [(r.status_code, r.text) for r in refused]
    assert len(acked) >= 60

    if backend == "sqlite":
        with get_engine(db).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    server.restart()
    with httpx.Client(base_url=server.base, timeout=30, headers=resident) as c:
        for desc, rid in acked.items():
            r = c.get(f"/requests/{rid}")
            assert r.status_code == 200 and r.json()["description"] == desc
        # A request whose answer was lost is retried with its key: it exists exactly once.
        for desc in unanswered:
            r = c.post("/requests", json=new_request(description=desc),
                       headers={"Idempotency-Key": desc})
            assert r.status_code == 201, r.text
    with session_maker(db)() as s:
        for desc in [*acked, *unanswered]:
            n = s.scalar(select(func.count()).select_from(ServiceRequest)
                         .where(ServiceRequest.description == desc))
            assert n == 1, desc


def test_signups_never_exceed_capacity_and_promote_in_order(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    start = datetime.now(UTC) + timedelta(days=1)
    r = httpx.post(server.base + "/activities", headers=actors.user("admin"), json={
        "title": "社区义诊", "category": "health", "capacity": 5,
        "site_id": str(district.positions["site_id"].iloc[0]),
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()})
    assert r.status_code == 201, r.text
    url = f"{server.base}/activities/{r.json()['id']}/signups"
    tokens = []
    for i in range(30):
        v = httpx.post(server.base + "/volunteers",
                       json={"name": f"志愿者{i}", "phone": f"1361234{i:04d}"})
        assert v.status_code == 201, v.text
        tokens.append({"Authorization": f"Bearer {v.json()['token']}"})

    answers = race(30, lambda c, i: c.post(url, headers=tokens[i]))
    assert [a.status_code for a in answers] == [201] * 30, [a.text for a in answers]
    states = Counter(a.json()["state"] for a in answers)
    assert states == {"confirmed": 5, "waitlisted": 25}
    with session_maker(db)() as s:
        activity = s.get(Activity, r.json()["id"])
        assert activity is not None and activity.confirmed == 5
        queue = s.scalars(select(Signup).where(Signup.activity_id == activity.id,
                                               Signup.state == "waitlisted")
                          .order_by(Signup.seq)).all()
        first_five = [q.volunteer_id for q in queue[:5]]

    confirmed = [i for i, a in enumerate(answers) if a.json()["state"] == "confirmed"]
    left = race(5, lambda c, i: c.delete(url, headers=tokens[confirmed[i]]))
    assert [a.status_code for a in left] == [200] * 5, [a.text for a in left]
    promoted = sorted(a.json()["promoted"]["volunteer_id"] for a in left)
    assert promoted == sorted(first_five)
    with session_maker(db)() as s:
        activity = s.get(Activity, r.json()["id"])
        assert activity is not None and activity.confirmed == 5
        assert s.scalar(select(func.count()).select_from(Signup).where(
            Signup.activity_id == activity.id, Signup.state == "confirmed")) == 5


def _funded_volunteer(server: Server, db: str, i: int, hours: float) -> tuple[int, dict[str, str]]:
    r = httpx.post(server.base + "/volunteers",
                   json={"name": f"兑换{i}", "phone": f"1321234{i:04d}"})
    assert r.status_code == 201, r.text
    vid = r.json()["volunteer"]["id"]
    with session_maker(db)() as s:
        actor = s.get(User, s.get(Volunteer, vid).user_id)  # type: ignore[union-attr]
        assert actor is not None
        credit_activity(s, vid, hours=hours, activity_id=None, team_id=None, actor=actor)
        s.commit()
    return vid, {"Authorization": f"Bearer {r.json()['token']}"}


def test_balances_stock_and_codes_hold_under_races(
    server: Server, db: str, district: geo.District
) -> None:
    actors = Actors(db, district)
    admin = actors.user("admin")
    per_hour = get_settings().points_per_hour
    site = str(district.positions["site_id"].iloc[0])

    def reward(price: int, stock: int) -> str:
        r = httpx.post(server.base + "/rewards", headers=admin, json={
            "name": "奖品", "site_id": site, "price_points": price, "stock": stock})
        assert r.status_code == 201, r.text
        return f"{server.base}/rewards/{r.json()['id']}/redemptions"

    # One volunteer, ten redemptions at once, points for three.
    vid, me = _funded_volunteer(server, db, 1, hours=10)
    price = 3 * per_hour
    url = reward(price, 100)
    answers = race(10, lambda c, i: c.post(url, headers=me))
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 3, 409: 7}, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    with session_maker(db)() as s:
        assert points_balance(s, vid) == 10 * per_hour - 3 * price >= 0

    # Ten volunteers, three items.
    funded = [_funded_volunteer(server, db, 10 + i, hours=10)[1] for i in range(10)]
    url = reward(1, 3)
    answers = race(10, lambda c, i: c.post(url, headers=funded[i]))
    assert Counter(a.status_code for a in answers) == {201: 3, 409: 7}
    picked = [a.json()["code"] for a in answers if a.status_code == 201]
    assert len(set(picked)) == 3
    with session_maker(db)() as s:
        assert s.scalar(select(func.min(Reward.stock))) == 0

    # Six pick-ups of one code at once: one is confirmed.
    pickups = race(6, lambda c, i: c.post(f"{server.base}/redemptions/{picked[0]}/pickup",
                                          headers=admin))
    assert Counter(p.status_code for p in pickups) == {200: 1, 409: 5}


def test_concurrent_retries_of_one_redemption_key_pay_once(
    server: Server, db: str, district: geo.District
) -> None:
    """Five posts with one key at once, points and stock for one: one redemption, five 201s.

    Without the key's second look under the locks, PostgreSQL's losers (which passed the first
    look before the winner committed) would answer insufficient_points or out_of_stock.
    """
    actors = Actors(db, district)
    per_hour = get_settings().points_per_hour
    r = httpx.post(server.base + "/rewards", headers=actors.user("admin"), json={
        "name": "纪念徽章", "site_id": str(district.positions["site_id"].iloc[0]),
        "price_points": 2 * per_hour, "stock": 1})
    assert r.status_code == 201, r.text
    reward_id = r.json()["id"]
    vid, me = _funded_volunteer(server, db, 40, hours=2)
    key = me | {"Idempotency-Key": "badge-tap-1"}
    url = f"{server.base}/rewards/{reward_id}/redemptions"

    answers = race(5, lambda c, i: c.post(url, headers=key))
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["code"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 4
    with session_maker(db)() as s:
        assert points_balance(s, vid) == 0
        assert s.scalar(select(func.count()).select_from(Redemption)
                        .where(Redemption.volunteer_id == vid)) == 1
        assert s.scalar(select(func.count()).select_from(PointsLine)
                        .where(PointsLine.volunteer_id == vid, PointsLine.reason == "redeem")) == 1
        reward = s.get(Reward, reward_id)
        assert reward is not None and reward.stock == 0
    mine = httpx.get(server.base + "/volunteers/me/redemptions", headers=me).json()["items"]
    assert [m["code"] for m in mine] == [answers[0].json()["code"]]
