"""The notifications outbox: events with the change, signed delivery to a real local webhook.

The receiver is a real HTTP server on 127.0.0.1 that checks each body's HMAC itself and can
refuse the first N deliveries. Retries are driven by moving ``now`` on, not by sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

import geo
from api.domain import SignupState
from api.services import outbox
from api.services.state_machine import ACTIONS, move
from api.storage.models import OutboxEvent, ServiceRequest, User, as_utc
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors, new_request
from tests.api.helpers import new_volunteer

SECRET = "测试-secret-0123"


class Receiver:
    """A webhook on 127.0.0.1 that verifies signatures and refuses the first ``fail_first``.

    ``port`` 0 takes a free one; ``delay_s`` is how long it works on each delivery (after
    recording it, before answering), so that a sender can die between the two.
    """

    def __init__(self, secret: str, fail_first: int = 0, *, port: int = 0,
                 delay_s: float = 0.0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.posts: list[dict[str, Any]] = []  # every delivery attempt, in arrival order
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mac = hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    refuse = receiver.fail_first > 0
                    receiver.fail_first -= 1
                    receiver.posts.append({
                        "body": json.loads(body), "event_id": self.headers["X-Event-Id"],
                        "signed": hmac.compare_digest(self.headers["X-Signature"],
                                                      f"sha256={mac}"),
                        "accepted": not refuse})
                if delay_s:
                    time.sleep(delay_s)
                try:
                    self.send_response(500 if refuse else 204)
                    self.end_headers()
                except OSError:  # the sender died waiting: it will send again
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[str]:
        return [p["body"]["id"] for p in self.posts if p["accepted"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def empty_outbox(db: str) -> str:
    with session_maker(db)() as s:
        s.execute(delete(OutboxEvent))
        s.commit()
    return db


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def events(url: str) -> list[OutboxEvent]:
    with session_maker(url)() as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def is_zh(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_an_order_lifecycle_becomes_signed_events_delivered_once(
    client: TestClient, actors: Actors, empty_outbox: str, receiver: Receiver,
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    rid = client.post("/requests", json=new_request("elderly"), headers=resident).json()["id"]
    team_id = client.post(f"/requests/{rid}/dispatch", headers=dispatcher).json()["team"]["team_id"]
    team = actors.team(team_id)
    steps = [("accept", {}, team), ("complete", {"hours": 1.5}, team),
             ("review", {"stars": 4}, resident)]
    for action, body, who in steps:
        r = client.post(f"/requests/{rid}/{action}", json=body or None, headers=who)
        assert r.status_code == 200, r.text
    history = client.get(f"/requests/{rid}", headers=resident).json()

    made = events(empty_outbox)
    # One event per audience that should hear of each move, worded for it.
    assert [(e.type, e.audience) for e in made] == [
        ("request.create", "resident"), ("request.create", "dispatcher"),
        ("request.dispatch", "resident"), ("request.dispatch", "team"),
        ("request.accept", "resident"), ("request.complete", "resident"),
        ("request.review", "team")]
    states = {"create": "submitted", "dispatch": "dispatched", "accept": "accepted",
              "complete": "completed", "review": "reviewed"}
    resident_id = client.get("/users/me", headers=resident).json()["id"]
    team_name = client.get(f"/teams/{team_id}").json()["name"]
    for event in made:
        subject = json.loads(event.subject)
        assert subject["request_id"] == rid and subject["state"] == states[subject["action"]]
        assert subject["audience"] == event.audience
        assert f"#{rid}" in event.message_zh and is_zh(event.message_zh)
        assert event.delivered_at is None and event.attempts == 0
        if event.audience == "resident":
            assert subject["resident_id"] == resident_id
        else:
            assert "resident_id" not in subject
    assert json.loads(made[0].subject)["team_id"] is None
    assert {json.loads(e.subject)["team_id"] for e in made[2:]} == {team_id}
    words = [e.message_zh for e in made]
    assert words[0] == f"您的服务单 #{rid}（敬老助老）已提交，正在为您派单"
    assert words[1] == f"新服务单 #{rid}：敬老助老，待派单"
    assert words[2] == f"您的服务单 #{rid} 已派单给{team_name}，请留意队伍联系"
    assert words[3] == f"新派单 #{rid}：敬老助老，请尽快接单"
    assert team_name in words[4] and "已接单" in words[4]
    assert "评价" in words[5] and "已评价" in words[6]
    assert history["state"] == "reviewed"

    now = datetime.now(UTC)
    done = outbox.deliver_due(session_maker(empty_outbox), receiver.url, SECRET, now=now)
    assert (done.delivered, done.failed) == (7, 0)
    assert all(p["signed"] for p in receiver.posts)
    assert all(p["event_id"] == p["body"]["id"] for p in receiver.posts)
    assert receiver.accepted() == [e.event_id for e in made]  # oldest first
    first = receiver.posts[0]["body"]
    assert first["type"] == "request.create" and first["subject"]["request_id"] == rid
    assert datetime.fromisoformat(first["occurred_at"]) == as_utc(made[0].occurred_at)
    assert first["message_zh"] == made[0].message_zh
    assert all(e.delivered_at is not None for e in events(empty_outbox))
    # Nothing is sent twice once answered, however late the next pass runs.
    again = outbox.deliver_due(session_maker(empty_outbox), receiver.url, SECRET,
                               now=now + timedelta(days=1))
    assert (again.delivered, again.failed) == (0, 0) and len(receiver.posts) == 7


def test_a_failing_receiver_gets_retries_with_backoff_and_loses_nothing(
    empty_outbox: str,
) -> None:
    receiver = Receiver(SECRET, fail_first=3)
    try:
        t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        factory = session_maker(empty_outbox)
        with factory() as s:
            ids = [outbox.record(s, "test.ping", {"n": n}, f"测试消息{n}", at=t0).event_id
                   for n in range(2)]
            s.commit()

        def run(at: datetime) -> tuple[int, int]:
            done = outbox.deliver_due(factory, receiver.url, SECRET, now=at)
            return done.delivered, done.failed

        assert run(t0) == (0, 2)  # refusals 1 and 2
        rows = events(empty_outbox)
        assert [r.attempts for r in rows] == [1, 1]
        assert {r.last_error for r in rows} == {"HTTP 500"}
        wait = outbox.backoff(1)
        assert all(as_utc(r.next_attempt_at) == t0 + wait for r in rows)
        assert run(t0 + wait - timedelta(seconds=1)) == (0, 0)  # not due yet: nothing posted
        assert len(receiver.posts) == 2

        t1 = t0 + wait
        assert run(t1) == (1, 1)  # refusal 3 for the first, the second gets through
        rows = events(empty_outbox)
        assert rows[0].attempts == 2 and rows[0].delivered_at is None
        assert outbox.backoff(2) > wait
        assert as_utc(rows[0].next_attempt_at) == t1 + outbox.backoff(2)
        assert rows[1].delivered_at is not None
        assert run(t1 + outbox.backoff(2)) == (1, 0)
        assert run(t1 + timedelta(days=2)) == (0, 0)

        assert len(receiver.posts) == 5 and all(p["signed"] for p in receiver.posts)
        assert sorted(receiver.accepted()) == sorted(ids)  # each once, none lost
        assert all(r.delivered_at is not None and r.last_error is None
                   for r in events(empty_outbox))
    finally:
        receiver.close()


def test_backoff_doubles_and_is_capped() -> None:
    waits = [outbox.backoff(n).total_seconds() for n in range(1, 20)]
    assert waits[0] == outbox.BASE_BACKOFF_S
    assert all(b == min(2 * a, outbox.MAX_BACKOFF_S) for a, b in itertools.pairwise(waits))
    assert waits[-1] == outbox.MAX_BACKOFF_S


def test_a_wrong_secret_does_not_verify(empty_outbox: str, receiver: Receiver) -> None:
    with session_maker(empty_outbox)() as s:
        outbox.record(s, "test.ping", {}, "测试")
        s.commit()
    outbox.deliver_due(session_maker(empty_outbox), receiver.url, "another secret")
    assert [p["signed"] for p in receiver.posts] == [False]


def test_an_unreachable_webhook_is_retried_later(empty_outbox: str) -> None:
    dead = Receiver(SECRET)
    url = dead.url
    dead.close()  # nobody listens there any more
    now = datetime.now(UTC)
    with session_maker(empty_outbox)() as s:
        outbox.record(s, "test.ping", {}, "测试", at=now)
        s.commit()
    done = outbox.deliver_due(session_maker(empty_outbox), url, SECRET, now=now)
    assert (done.delivered, done.failed) == (0, 1)
    (row,) = events(empty_outbox)
    assert row.attempts == 1 and row.delivered_at is None and row.last_error


def test_the_event_commits_or_rolls_back_with_its_change(
    client: TestClient, actors: Actors, empty_outbox: str,
) -> None:
    rid = client.post("/requests", json=new_request("elderly"),
                      headers=actors.resident()).json()["id"]
    actors.dispatcher()
    factory = session_maker(empty_outbox)
    for keep in (False, True):
        with factory() as s:
            req = s.get(ServiceRequest, rid)
            user = s.scalar(select(User).where(User.role == "dispatcher"))
            assert req is not None and user is not None
            move(s, req, user, ACTIONS["cancel"], team_id=None)
            if keep:
                s.commit()
            else:
                s.rollback()
        state = client.get(f"/requests/{rid}", headers=actors.dispatcher()).json()["state"]
        types = [e.type for e in events(empty_outbox)]
        created = ["request.create"] * 2  # the resident's and the dispatchers'
        if keep:
            assert state == "cancelled" and types == [*created, "request.cancel"]
        else:
            assert state == "submitted" and types == created


def test_a_promotion_from_the_waitlist_is_an_event(
    client: TestClient, actors: Actors, empty_outbox: str, district: geo.District,
) -> None:
    site = str(district.positions["site_id"].iloc[0])
    team = actors.new_team("health", site_id=site)
    vid, leader = new_volunteer(client, "队长")
    r = client.post(f"/teams/{team}/members", headers=actors.user("admin"),
                    json={"volunteer_id": vid, "leader": True})
    assert r.status_code == 201, r.text
    start = datetime.now(UTC) + timedelta(days=1)
    aid = client.post("/activities", headers=leader, json={
        "title": "社区义诊", "category": "health", "site_id": site,
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": 1}).json()["id"]
    (_, first), (second_id, second) = new_volunteer(client, "甲"), new_volunteer(client, "乙")
    for auth in (first, second):
        assert client.post(f"/activities/{aid}/signups", headers=auth).status_code == 201
    assert events(empty_outbox) == []  # signing up is no promotion
    out = client.delete(f"/activities/{aid}/signups", headers=first).json()
    assert out["promoted"]["volunteer_id"] == second_id

    (event,) = events(empty_outbox)
    assert event.type == "signup.promoted"
    subject = json.loads(event.subject)
    assert subject["activity_id"] == aid and subject["volunteer_id"] == second_id
    assert subject["state"] == "confirmed"
    assert "社区义诊" in event.message_zh and SignupState.CONFIRMED.zh in event.message_zh
    # The promoted volunteer leaving promotes nobody: no further event.
    client.delete(f"/activities/{aid}/signups", headers=second)
    assert len(events(empty_outbox)) == 1


def test_two_deliverers_at_once_send_each_event_once(
    empty_outbox: str, receiver: Receiver,
) -> None:
    factory = session_maker(empty_outbox)
    with factory() as s:
        ids = [outbox.record(s, "test.ping", {"n": n}, f"消息{n}").event_id for n in range(40)]
        s.commit()
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            while outbox.deliver_due(factory, receiver.url, SECRET, batch=7).delivered:
                pass
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(receiver.accepted()) == sorted(ids)  # every one, none twice


def test_the_cli_delivers_once(empty_outbox: str, receiver: Receiver,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    with session_maker(empty_outbox)() as s:
        event_id = outbox.record(s, "test.ping", {}, "测试").event_id
        s.commit()
    runner = CliRunner()
    args = ["notify", "deliver", "--once", "--database-url", empty_outbox]
    monkeypatch.delenv("PRACTICE_CIRCLE_WEBHOOK_URL", raising=False)
    assert runner.invoke(app, args).exit_code == 2  # no webhook configured
    monkeypatch.setenv("PRACTICE_CIRCLE_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("PRACTICE_CIRCLE_WEBHOOK_SECRET", SECRET)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "delivered 1" in result.output
    assert receiver.accepted() == [event_id] and receiver.posts[0]["signed"]


def test_the_app_delivers_in_the_background_when_a_webhook_is_set(
    empty_outbox: str, actors: Actors, receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.main import create_app
    from api.settings import get_settings

    for name, value in (("DATABASE_URL", empty_outbox), ("WEBHOOK_URL", receiver.url),
                        ("WEBHOOK_SECRET", SECRET), ("WEBHOOK_POLL_S", "0.05")):
        monkeypatch.setenv(f"PRACTICE_CIRCLE_{name}", value)
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as c:
            r = c.post("/requests", json=new_request("elderly"), headers=actors.resident())
            assert r.status_code == 201, r.text
            deadline = datetime.now(UTC) + timedelta(seconds=20)
            while len(receiver.accepted()) < 2 and datetime.now(UTC) < deadline:
                threading.Event().wait(0.05)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    made = events(empty_outbox)
    assert [e.audience for e in made] == ["resident", "dispatcher"]
    assert receiver.accepted() == [e.event_id for e in made]
    assert all(p["signed"] for p in receiver.posts)
    assert {p["body"]["subject"]["request_id"] for p in receiver.posts} == {r.json()["id"]}


def test_confirmed_volunteers_are_reminded_once_of_an_activity_soon(
    client: TestClient, actors: Actors, empty_outbox: str, district: geo.District,
) -> None:
    site = str(district.positions["site_id"].iloc[0])
    place = str(district.positions["name"].iloc[0])
    team = actors.new_team("health", site_id=site)
    vid, leader = new_volunteer(client, "队长")
    client.post(f"/teams/{team}/members", headers=actors.user("admin"),
                json={"volunteer_id": vid, "leader": True})
    now = datetime.now(UTC).replace(microsecond=0)
    soon, later = now + timedelta(hours=3), now + timedelta(days=3)
    ids = []
    for title, start in (("近期活动", soon), ("远期活动", later)):
        ids.append(client.post("/activities", headers=leader, json={
            "title": title, "category": "health", "site_id": site,
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
            "capacity": 1}).json()["id"])
    (confirmed_id, confirmed), (_, waitlisted) = new_volunteer(client, "甲"), new_volunteer(client)
    for aid in ids:
        for auth in (confirmed, waitlisted):
            assert client.post(f"/activities/{aid}/signups", headers=auth).status_code == 201

    factory = session_maker(empty_outbox)
    assert outbox.remind_due(factory, now=now) == 1
    assert outbox.remind_due(factory, now=now + timedelta(minutes=5)) == 0  # once only
    (event,) = events(empty_outbox)
    assert event.type == "activity.reminder"
    subject = json.loads(event.subject)
    assert subject["activity_id"] == ids[0] and subject["volunteer_id"] == confirmed_id
    local = soon.astimezone(timezone(timedelta(hours=8)))  # Beijing: UTC+8, no summer time
    assert "近期活动" in event.message_zh and f"{local:%H:%M}" in event.message_zh
    assert place in event.message_zh
    # A day before the later one, its confirmed volunteer is reminded too.
    assert outbox.remind_due(factory, now=later - timedelta(hours=23)) == 1
    assert [json.loads(e.subject)["activity_id"] for e in events(empty_outbox)] == ids


def test_a_team_hears_of_a_cancel_and_dispatchers_of_a_decline(
    client: TestClient, actors: Actors, empty_outbox: str,
) -> None:
    resident, dispatcher = actors.resident(), actors.dispatcher()
    rids = [client.post("/requests", json=new_request("elderly"), headers=resident).json()["id"]
            for _ in range(2)]
    teams = [client.post(f"/requests/{rid}/dispatch", headers=dispatcher).json()["team"]
             for rid in rids]
    r = client.post(f"/requests/{rids[0]}/decline", headers=actors.team(teams[0]["team_id"]))
    assert r.status_code == 200, r.text
    r = client.post(f"/requests/{rids[1]}/cancel", headers=resident)
    assert r.status_code == 200, r.text
    later = [e for e in events(empty_outbox) if e.type in ("request.decline", "request.cancel")]
    heard = {(e.type, e.audience): (json.loads(e.subject), e.message_zh) for e in later}
    assert set(heard) == {("request.decline", "resident"), ("request.decline", "dispatcher"),
                          ("request.cancel", "resident"), ("request.cancel", "team")}
    subject, text = heard[("request.decline", "dispatcher")]
    assert subject["district"] == geo.DEFAULT_DISTRICT and teams[0]["name"] in text
    assert "待重新派单" in text
    subject, text = heard[("request.cancel", "team")]
    assert subject["team_id"] == teams[1]["team_id"] and text.startswith(f"服务单 #{rids[1]}")
    assert "已取消" in heard[("request.cancel", "resident")][1]


def test_an_event_failing_too_often_is_a_dead_letter_until_retried(
    empty_outbox: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    dead = Receiver(SECRET)
    url = dead.url
    dead.close()
    policy = outbox.Policy(max_attempts=3, base_backoff_s=1, max_backoff_s=1)
    factory = session_maker(empty_outbox)
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with factory() as s:
        outbox.record(s, "test.ping", {}, "测试", at=t0)
        s.commit()
    results = [outbox.deliver_due(factory, url, SECRET, now=t0 + timedelta(seconds=10 * n),
                                  policy=policy) for n in range(5)]
    assert [(d.failed, d.given_up) for d in results] == [(1, 0), (1, 0), (1, 1), (0, 0), (0, 0)]
    (row,) = events(empty_outbox)
    assert row.attempts == 3 and row.failed_at is not None
    assert as_utc(row.failed_at) == t0 + timedelta(seconds=20)
    assert row.delivered_at is None and row.last_error

    runner = CliRunner()
    at_db = ["--database-url", empty_outbox]
    status = runner.invoke(app, ["notify", "status", "--json", *at_db])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output) == {"pending": 0, "delivered": 0, "failed": 1}
    retried = runner.invoke(app, ["notify", "retry-failed", *at_db])
    assert retried.exit_code == 0 and "1 failed events" in retried.output
    (row,) = events(empty_outbox)
    assert row.failed_at is None and row.attempts == 0
    receiver = Receiver(SECRET)
    try:
        done = outbox.deliver_due(factory, receiver.url, SECRET, policy=policy)
        assert (done.delivered, done.failed) == (1, 0)
    finally:
        receiver.close()
    status = runner.invoke(app, ["notify", "status", "--json", *at_db])
    assert json.loads(status.output) == {"pending": 0, "delivered": 1, "failed": 0}


def test_delivered_events_are_kept_a_while_and_sign_in_codes_not_at_all(
    empty_outbox: str, receiver: Receiver,
) -> None:
    factory = session_maker(empty_outbox)
    policy = outbox.Policy(keep=timedelta(days=7), code_ttl=timedelta(minutes=5))
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with factory() as s:
        old = outbox.record(s, "test.ping", {"n": 1}, "旧消息", at=t0).event_id
        code = outbox.record(s, outbox.AUTH_CODE, {"phone": "13900000000"}, "验证码 123456",
                             at=t0, audience="phone").event_id
        s.commit()
    done = outbox.deliver_due(factory, receiver.url, SECRET, now=t0, policy=policy)
    assert done.delivered == 2 and sorted(receiver.accepted()) == sorted([old, code])
    assert [e.event_id for e in events(empty_outbox)] == [old]  # the code went at once
    with factory() as s:  # a code nobody could deliver in time goes too
        stale = outbox.record(s, outbox.AUTH_CODE, {}, "验证码 654321", at=t0,
                              audience="phone").event_id
        recent = outbox.record(s, "test.ping", {"n": 2}, "新消息",
                               at=t0 + timedelta(days=6)).event_id
        s.commit()
    assert outbox.clean_up(factory, now=t0 + timedelta(minutes=6), policy=policy) == 1
    assert stale not in [e.event_id for e in events(empty_outbox)]
    outbox.deliver_due(factory, receiver.url, SECRET, now=t0 + timedelta(days=6), policy=policy)
    assert outbox.clean_up(factory, now=t0 + timedelta(days=7, seconds=1), policy=policy) == 1
    assert [e.event_id for e in events(empty_outbox)] == [recent]  # delivered a day ago: kept


def test_sign_in_codes_jump_the_queue_and_expired_ones_are_not_sent(
    empty_outbox: str, receiver: Receiver,
) -> None:
    factory = session_maker(empty_outbox)
    policy = outbox.Policy(code_ttl=timedelta(minutes=5))
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with factory() as s:
        backlog = [outbox.record(s, "test.ping", {"n": n}, f"积压消息 {n}", at=t0).event_id
                   for n in range(5)]
        expired = outbox.record(s, outbox.AUTH_CODE, {"phone": "13900000000"}, "验证码 111111",
                                at=t0, audience="phone").event_id
        fresh = outbox.record(s, outbox.AUTH_CODE, {"phone": "13900000001"}, "验证码 222222",
                              at=t0 + timedelta(minutes=4), audience="phone").event_id
        s.commit()
    # a pass of 2 behind a backlog of 5, six minutes on: the fresh code goes first
    done = outbox.deliver_due(factory, receiver.url, SECRET, now=t0 + timedelta(minutes=6),
                              batch=2, policy=policy)
    assert done.delivered == 2
    assert receiver.accepted() == [fresh, backlog[0]]
    outbox.deliver_due(factory, receiver.url, SECRET, now=t0 + timedelta(minutes=6),
                       batch=10, policy=policy)
    assert expired not in receiver.accepted()
    assert sorted(receiver.accepted()) == sorted([fresh, *backlog])
