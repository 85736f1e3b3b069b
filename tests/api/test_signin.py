"""Phone sign-in by one-time code, end to end through the HTTP API (SQLite and PostGIS).

The code is read where a person would read it: from the server log when no webhook is set,
else from a real local webhook receiver (the one of the outbox tests) that checks signatures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

import geo
from api.services import outbox
from api.services.accounts import create_user, hash_token
from api.settings import get_settings
from api.storage.models import OutboxEvent, ServiceRequest, SignInCode, User
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors, new_request
from tests.api.helpers import new_phone, problem
from tests.api.test_outbox import SECRET, Receiver

LOG_LINE = re.compile(r"一次性验证码 (\d{3}\*{4}\d{4}): (\d{6})")


@contextmanager
def running_app(db_url: str, address: str = "testclient",
                **env: str) -> Iterator[TestClient]:
    """The real app (lifespan included) on ``db_url`` with ``PRACTICE_CIRCLE_<KEY>`` settings."""
    from api.deps import settings_dep
    from api.main import create_app
    from api.settings import Settings

    with pytest.MonkeyPatch.context() as mp:  # the environment only while the app is made
        mp.setenv("PRACTICE_CIRCLE_DATABASE_URL", db_url)
        mp.setenv("PRACTICE_CIRCLE_ESCALATION_POLL_S", "0")
        for key, value in env.items():
            mp.setenv(f"PRACTICE_CIRCLE_{key.upper()}", value)
        get_settings.cache_clear()
        settings = Settings()
        app = create_app()
        app.dependency_overrides[settings_dep] = lambda: settings
        client = TestClient(app, client=(address, 50000))
        client.__enter__()  # starts the lifespan, which builds the middleware (rate limits)
    get_settings.cache_clear()
    try:
        yield client
    finally:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def app_client(db_url: str, cache_dir: Path) -> Iterator[TestClient]:
    """The app of these tests: its per-address code limit is the subject of one test only."""
    with running_app(db_url, rate_limit_signin="1000/minute") as c:
        yield c


@pytest.fixture
def signin_env(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No webhook, codes logged, resendable at once (the 60 s rule has a test of its own)."""
    with session_maker(db)() as s:
        s.execute(delete(SignInCode))
        s.commit()
    monkeypatch.delenv("PRACTICE_CIRCLE_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("PRACTICE_CIRCLE_SIGNIN_RESEND_S", "0")
    monkeypatch.setenv("PRACTICE_CIRCLE_SIGNIN_LOG_CODES", "true")
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"PRACTICE_CIRCLE_{name.upper()}", value)
    get_settings.cache_clear()


def ask_code(client: TestClient, caplog: pytest.LogCaptureFixture, phone: str) -> str:
    """Ask for a code and read it from the server log, as a developer would."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="practice_circle"):
        r = client.post("/auth/codes", json={"phone": phone})
    assert r.status_code == 202, r.text
    lines = [m for rec in caplog.records if rec.name == "practice_circle"
             and (m := LOG_LINE.search(rec.getMessage()))]
    assert len(lines) == 1, caplog.text
    assert lines[0].group(1) == phone[:3] + "****" + phone[-4:]
    return lines[0].group(2)


def sign_in(client: TestClient, phone: str, code: str) -> dict[str, object]:
    r = client.post("/auth/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_new_number_signs_in_as_a_resident_and_is_kept_only_hashed(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    code = ask_code(client, caplog, phone)
    out = sign_in(client, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", code)
    user = out["user"]
    assert isinstance(user, dict) and isinstance(out["token"], str)
    assert user["role"] == "resident" and user["role_zh"] == "居民"
    assert user["name"] == f"居民{phone[-4:]}"
    assert user["phone_masked"] == f"{phone[:3]}****{phone[-4:]}"
    assert user["volunteer_id"] is None and user["leads_teams"] == []
    me = client.get("/users/me", headers={"Authorization": f"Bearer {out['token']}"})
    assert me.status_code == 200 and me.json() == user
    # Stored: the token's SHA-256, the phone's keyed hash; never the number or the code.
    with session_maker(db)() as s:
        row = s.get(User, user["id"])
        assert row is not None and row.token_hash == hash_token(str(out["token"]))
        assert row.phone_hash and len(row.phone_hash) == 64
        assert row.phone_hash != hashlib.sha256(phone.encode()).hexdigest()  # keyed
        stored = [str(v) for v in (row.name, row.phone_hash, row.phone_masked, row.token_hash)]
        assert not any(phone in v for v in stored)
        (kept,) = s.scalars(select(SignInCode)).all()
        assert code not in kept.code_hash and kept.used_at is not None
    # The order path works with the new token (a resident may order).
    assert client.get("/requests", headers={"Authorization": f"Bearer {out['token']}"}
                      ).status_code == 200


def test_known_and_unknown_numbers_get_the_same_answer(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
) -> None:
    known = new_phone()
    with session_maker(db)() as s:
        create_user(s, role="dispatcher", name="调度员", phone=known)
        s.commit()
    answers = [client.post("/auth/codes", json={"phone": p}) for p in (known, new_phone())]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json() == {
        "sent": True, "expires_in_s": 300, "resend_after_s": 0}
    assert set(answers[0].headers) == set(answers[1].headers)
    bad = client.post("/auth/codes", json={"phone": "12345"})
    problem(bad, 422, "invalid_phone")


def test_wrong_used_and_too_many_tries_are_one_bad_code(
    client: TestClient, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    code = ask_code(client, caplog, phone)
    body = problem(client.post("/auth/sessions", json={"phone": phone, "code": wrong(code)}),
                   401, "bad_code")
    assert body["title"] == "验证码错误或已失效"
    first = sign_in(client, phone, code)  # a wrong try does not spoil the code
    # Used once: not again.
    problem(client.post("/auth/sessions", json={"phone": phone, "code": code}), 401, "bad_code")
    # Five wrong tries spend a code, even the right one after them.
    code = ask_code(client, caplog, phone)
    for _ in range(5):
        problem(client.post("/auth/sessions", json={"phone": phone, "code": wrong(code)}),
                401, "bad_code")
    problem(client.post("/auth/sessions", json={"phone": phone, "code": code}), 401, "bad_code")
    # A new code replaces the old one; the same user signs in again, the old device is out.
    old = ask_code(client, caplog, phone)
    code = ask_code(client, caplog, phone)
    if old != code:
        problem(client.post("/auth/sessions", json={"phone": phone, "code": old}),
                401, "bad_code")
    second = sign_in(client, phone, code)
    assert second["user"] == first["user"]
    gone = client.get("/users/me", headers={"Authorization": f"Bearer {first['token']}"})
    problem(gone, 401, "unauthorized")
    # A malformed code is refused before it counts.
    problem(client.post("/auth/sessions", json={"phone": phone, "code": "12ab"}),
            422, "invalid_request")


def test_an_expired_code_does_not_work(
    client: TestClient, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_env(signin_env, signin_code_minutes="0.01")  # 0.6 s
    phone = new_phone()
    code = ask_code(client, caplog, phone)
    time.sleep(0.8)
    problem(client.post("/auth/sessions", json={"phone": phone, "code": code}), 401, "bad_code")


def test_one_code_per_number_per_minute(
    client: TestClient, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_env(signin_env, signin_resend_s="60")
    phone, other = new_phone(), new_phone()
    ask_code(client, caplog, phone)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="practice_circle"):
        again = client.post("/auth/codes", json={"phone": phone})
    body = problem(again, 429, "code_too_soon")
    assert 55 <= int(again.headers["retry-after"]) <= 60 and body["retry_after_s"] > 0
    assert "一次性验证码" not in caplog.text  # no second code was made
    ask_code(client, caplog, other)  # another number is not held up


def test_the_minute_rule_holds_for_requests_at_the_same_moment(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
) -> None:
    set_env(signin_env, signin_resend_s="60")
    phone = new_phone()
    barrier = threading.Barrier(6)

    def ask(_: int) -> int:
        barrier.wait()
        return client.post("/auth/codes", json={"phone": phone}).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(ask, range(6)))
    assert statuses == [202] + [429] * 5
    with session_maker(db)() as s:
        assert len(s.scalars(select(SignInCode)).all()) == 1


def test_a_volunteers_number_signs_in_to_the_volunteer(
    client: TestClient, actors: Actors, db: str, district: geo.District,
    signin_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    r = client.post("/volunteers", json={"name": "李志愿", "phone": phone})
    assert r.status_code == 201, r.text
    vid, registered = r.json()["volunteer"]["id"], r.json()["token"]
    team = actors.new_team("health", site_id=str(district.positions["site_id"].iloc[0]))
    r = client.post(f"/teams/{team}/members", headers=actors.user("admin"),
                    json={"volunteer_id": vid, "leader": True})
    assert r.status_code == 201, r.text
    out = sign_in(client, phone, ask_code(client, caplog, phone))
    user = out["user"]
    assert isinstance(user, dict)
    assert (user["role"], user["name"], user["volunteer_id"]) == ("volunteer", "李志愿", vid)
    assert user["leads_teams"] == [team] and user["role_zh"] == "志愿者"
    mine = client.get("/volunteers/me", headers={"Authorization": f"Bearer {out['token']}"})
    assert mine.status_code == 200 and mine.json()["id"] == vid
    # One token per user: the registration's token is replaced.
    problem(client.get("/users/me", headers={"Authorization": f"Bearer {registered}"}),
            401, "unauthorized")
    # The volunteer's user now has the phone: the next sign-in finds it directly.
    with session_maker(db)() as s:
        assert s.scalar(select(User.phone_masked).where(User.id == user["id"])) == (
            f"{phone[:3]}****{phone[-4:]}")
    again = sign_in(client, phone, ask_code(client, caplog, phone))
    assert again["user"] == user


def test_accounts_made_with_a_phone_sign_in_to_their_role(
    client: TestClient, actors: Actors, db: str, district: geo.District,
    signin_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    station_site = str(district.positions.query("level == 'community'")["site_id"].iloc[0])
    team = str(district.teams["team_id"].iloc[0])
    phones = {"station": new_phone(), "team": new_phone(), "dispatcher": new_phone()}
    runner = CliRunner()
    base = ["users", "create", "--database-url", db]
    made = {
        "station": runner.invoke(app, [*base, "--role", "station", "--name", "站长",
                                       "--site", station_site, "--phone", phones["station"]]),
        "team": runner.invoke(app, [*base, "--role", "team", "--name", "队长", "--team", team,
                                    "--phone", phones["team"]]),
        "dispatcher": runner.invoke(app, [*base, "--role", "dispatcher", "--name", "调度",
                                          "--phone", phones["dispatcher"]]),
    }
    for role, result in made.items():
        assert result.exit_code == 0, result.output
        assert f"phone {phones[role][:3]}****" in result.output
    # --site only with role station, and only a 所 or 站.
    site_level = str(district.positions.query("level == 'site'")["site_id"].iloc[0])
    for args in (["--role", "station", "--name", "x", "--site", site_level],
                 ["--role", "dispatcher", "--name", "x", "--site", station_site],
                 ["--role", "station", "--name", "x"],
                 ["--role", "dispatcher", "--name", "x", "--phone", phones["team"]],
                 ["--role", "dispatcher", "--name", "x", "--phone", "12345"]):
        assert runner.invoke(app, [*base, *args]).exit_code == 2, args

    users = {role: sign_in(client, phone, ask_code(client, caplog, phone))["user"]
             for role, phone in phones.items()}
    assert {r: u["role"] for r, u in users.items()} == {r: r for r in phones}  # type: ignore[index]
    assert users["station"]["site_id"] == station_site  # type: ignore[index]
    assert users["station"]["role_zh"] == "所站管理员"  # type: ignore[index]
    assert users["team"]["team_id"] == team  # type: ignore[index]
    assert users["dispatcher"]["name"] == "调度"  # type: ignore[index]


def test_with_a_webhook_the_code_goes_out_signed_and_is_not_kept(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(SECRET)
    try:
        set_env(signin_env, webhook_url=receiver.url, webhook_secret=SECRET)
        with session_maker(db)() as s:
            s.execute(delete(OutboxEvent))
            s.commit()
        phone = new_phone()
        with caplog.at_level(logging.WARNING, logger="practice_circle"):
            r = client.post("/auth/codes", json={"phone": phone})
        assert r.status_code == 202, r.text
        assert "一次性验证码" not in caplog.text  # a real SMS path: no code in the log
        with session_maker(db)() as s:
            (event,) = s.scalars(select(OutboxEvent)).all()
            assert (event.type, event.audience) == ("auth.code", "phone")
        done = outbox.deliver_due(session_maker(db), receiver.url, SECRET)
        assert (done.delivered, done.failed) == (1, 0)
        (post,) = receiver.posts
        assert post["signed"] and post["body"]["subject"]["phone"] == phone
        message = post["body"]["message_zh"]
        match = re.search(r"您的登录验证码为 (\d{6})，5分钟内有效", message)
        assert match and message.startswith("【15分钟文明实践】"), message
        with session_maker(db)() as s:  # delivered: the code's event is gone at once
            assert s.scalars(select(OutboxEvent)).all() == []
        out = sign_in(client, phone, match.group(1))
        assert out["user"]["role"] == "resident"  # type: ignore[index]
        assert json.dumps(out, ensure_ascii=False).count(phone) == 0  # masked only
    finally:
        receiver.close()


# ------------------------------------------------------------------ limits (review #1, #7)


def wrong_tries(client: TestClient, phone: str, code: str, n: int) -> None:
    for _ in range(n):
        problem(client.post("/auth/sessions", json={"phone": phone, "code": wrong(code)}),
                401, "bad_code")


def test_wrong_tries_count_per_number_for_a_day_whatever_the_codes(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_env(signin_env, signin_max_tries="10")  # so that a code still works at the lock
    phone, other = new_phone(), new_phone()
    first = ask_code(client, caplog, phone)
    wrong_tries(client, phone, first, 6)
    second = ask_code(client, caplog, phone)  # a new code does not reset the count
    wrong_tries(client, phone, second, 4)  # the 10th wrong try of the day
    # Locked: the right code of a working code is refused, and no new code is sent.
    locked = client.post("/auth/sessions", json={"phone": phone, "code": second})
    body = problem(locked, 429, "signin_locked")
    assert body["title"] == "验证码错误次数过多，已暂停登录"
    # Until the first code's 6 tries are a day old: just under 24 h.
    assert 86_000 < int(locked.headers["retry-after"]) <= 86_400 == 24 * 3600
    assert body["retry_after_s"] == int(locked.headers["retry-after"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="practice_circle"):
        again = client.post("/auth/codes", json={"phone": phone})
    problem(again, 429, "signin_locked")
    assert "一次性验证码" not in caplog.text
    ask_code(client, caplog, other)  # another number is not held up
    # A day later the first code's tries have aged out: the window rolls.
    with session_maker(db)() as s:
        digest = s.scalar(select(SignInCode.phone_hash).order_by(SignInCode.id).limit(1))
        oldest = s.scalar(select(func.min(SignInCode.id)).where(SignInCode.phone_hash == digest))
        row = s.get(SignInCode, oldest)
        assert row is not None and row.attempts == 6
        s.execute(update(SignInCode).where(SignInCode.id == oldest)
                  .values(created_at=row.created_at - timedelta(days=1, minutes=1)))
        s.commit()
    sign_in(client, phone, second)  # 4 wrong tries in the last day: the code works
    ask_code(client, caplog, phone)
    with session_maker(db)() as s:  # the day-old row is gone; the spent one is kept, expired
        kept = s.scalars(select(SignInCode).where(SignInCode.phone_hash == digest)
                         .order_by(SignInCode.id)).all()
        assert oldest not in [k.id for k in kept] and len(kept) == 2
        assert kept[0].attempts == 4 and kept[0].used_at is not None


def test_codes_per_number_per_day(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_env(signin_env, signin_codes_per_day="3")
    phone = new_phone()
    codes = [ask_code(client, caplog, phone) for _ in range(3)]
    refused = client.post("/auth/codes", json={"phone": phone})
    body = problem(refused, 429, "code_quota")
    assert body["title"] == "今日验证码次数已用完" and "3 次" in body["detail"]
    assert 86_000 < int(refused.headers["retry-after"]) <= 86_400
    with session_maker(db)() as s:  # superseded codes are kept (counted), expired
        rows = s.scalars(select(SignInCode).order_by(SignInCode.id)).all()
        assert len(rows) == 3
        assert all(r.expires_at <= rows[-1].created_at for r in rows[:2])
    if codes[0] != codes[2]:
        problem(client.post("/auth/sessions", json={"phone": phone, "code": codes[0]}),
                401, "bad_code")
    sign_in(client, phone, codes[2])  # the newest still works
    ask_code(client, caplog, new_phone())


def test_without_a_webhook_codes_are_not_logged_unless_asked_for(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    signin_env.delenv("PRACTICE_CIRCLE_SIGNIN_LOG_CODES")
    get_settings.cache_clear()
    assert get_settings().signin_log_codes is False  # the default: fail closed
    phone = new_phone()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="practice_circle"):
        r = client.post("/auth/codes", json={"phone": phone})
    body = problem(r, 503, "sms_unavailable")
    assert body["title"] == "短信服务未配置"
    assert "一次性验证码" not in caplog.text and not LOG_LINE.search(caplog.text)
    with session_maker(db)() as s:
        assert s.scalars(select(SignInCode)).all() == []
    problem(client.post("/auth/codes", json={"phone": "12345"}), 422, "invalid_phone")
    set_env(signin_env, signin_log_codes="true")
    ask_code(client, caplog, phone)


def test_each_address_may_ask_for_few_codes(
    db_url: str, db: str, signin_env: pytest.MonkeyPatch,
) -> None:
    with running_app(db_url, "203.0.113.9", rate_limit_signin="3/10 minutes") as c, \
            running_app(db_url, "203.0.113.10", rate_limit_signin="3/10 minutes") as other:
        for _ in range(3):
            assert c.post("/auth/codes", json={"phone": new_phone()}).status_code == 202
        refused = c.post("/auth/codes", json={"phone": new_phone()})
        body = problem(refused, 429, "rate_limited")
        assert body["per"] == "address" and "获取验证码" in body["detail"]
        assert 0 < int(refused.headers["retry-after"]) <= 600
        # Other writes of the address are not held up; another address may still ask.
        assert c.post("/auth/sessions", json={"phone": new_phone(), "code": "000000"}
                      ).status_code == 401
        assert other.post("/auth/codes", json={"phone": new_phone()}).status_code == 202


# ------------------------------------------------------------------ sessions (review #6)


def test_signing_out_ends_the_token_but_is_no_lock_out(
    client: TestClient, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    out = sign_in(client, phone, ask_code(client, caplog, phone))
    auth = {"Authorization": f"Bearer {out['token']}"}
    assert client.get("/users/me", headers=auth).status_code == 200
    r = client.delete("/auth/sessions", headers=auth)
    assert r.status_code == 204 and r.content == b""
    problem(client.get("/users/me", headers=auth), 401, "unauthorized")
    problem(client.delete("/auth/sessions", headers=auth), 401, "unauthorized")
    problem(client.delete("/auth/sessions"), 401, "unauthorized")
    again = sign_in(client, phone, ask_code(client, caplog, phone))
    assert again["user"] == out["user"]


def test_the_desk_signs_in_only_staff_and_rotates_nothing_else(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resident, unknown, staff = new_phone(), new_phone(), new_phone()
    with session_maker(db)() as s:
        create_user(s, role="dispatcher", name="调度台", phone=staff)
        s.commit()
    phone_session = sign_in(client, resident, ask_code(client, caplog, resident))
    auth = {"Authorization": f"Bearer {phone_session['token']}"}
    refused = client.post("/auth/sessions", json={
        "phone": resident, "code": ask_code(client, caplog, resident), "for": "desk"})
    body = problem(refused, 403, "not_staff")
    assert body["title"] == "该账号不能使用派单工作台" and "居民" in body["detail"]
    assert client.get("/users/me", headers=auth).status_code == 200  # the phone stays in
    with session_maker(db)() as s:
        users_before = s.scalar(select(func.count()).select_from(User))
    problem(client.post("/auth/sessions", json={
        "phone": unknown, "code": ask_code(client, caplog, unknown), "for": "desk"}),
        403, "not_staff")
    with session_maker(db)() as s:  # nobody was made a resident by the desk
        assert s.scalar(select(func.count()).select_from(User)) == users_before
    r = client.post("/auth/sessions", json={
        "phone": staff, "code": ask_code(client, caplog, staff), "for": "desk"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "dispatcher"
    problem(client.post("/auth/sessions", json={
        "phone": staff, "code": "123456", "for": "kiosk"}), 422, "invalid_request")


def test_a_revoked_user_stays_out_of_code_sign_in_until_rotated(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    phone = new_phone()
    with session_maker(db)() as s:
        user, _ = create_user(s, role="dispatcher", name="被停用调度", phone=phone)
        s.commit()
        uid = user.id
    runner = CliRunner()
    done = runner.invoke(app, ["users", "revoke", "--id", str(uid), "--database-url", db])
    assert done.exit_code == 0, done.output
    code = ask_code(client, caplog, phone)
    body = problem(client.post("/auth/sessions", json={"phone": phone, "code": code}),
                   403, "account_revoked")
    assert body["title"] == "账户已被停用" and "联系管理员" in body["detail"]
    with session_maker(db)() as s:  # still revoked: signing in by code did not undo it
        row = s.get(User, uid)
        assert row is not None and row.token_revoked_at is not None
    done = runner.invoke(app, ["users", "rotate", "--id", str(uid), "--database-url", db])
    assert done.exit_code == 0, done.output
    out = sign_in(client, phone, ask_code(client, caplog, phone))
    assert out["user"]["id"] == uid  # type: ignore[index]


# ------------------------------------------------------------------ accounts (review #2)


def test_a_signed_in_resident_becomes_the_volunteer_in_place(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    out = sign_in(client, phone, ask_code(client, caplog, phone))
    resident = out["user"]
    assert isinstance(resident, dict)
    auth = {"Authorization": f"Bearer {out['token']}"}
    order = client.post("/requests", headers=auth, json=new_request())
    assert order.status_code == 201, order.text
    form = {"name": "王志愿", "phone": phone, "categories": ["elderly"]}
    # Without the number's own sign-in: refused, whoever asks.
    body = problem(client.post("/volunteers", json=form), 409, "phone_registered")
    assert body["title"] == "该手机号已注册，请登录后再申请成为志愿者"
    other = new_phone()
    stranger = sign_in(client, other, ask_code(client, caplog, other))
    problem(client.post("/volunteers", json=form,
                        headers={"Authorization": f"Bearer {stranger['token']}"}),
            409, "phone_registered")
    # The resident themself: the same user becomes the volunteer.
    r = client.post("/volunteers", json=form, headers=auth)
    assert r.status_code == 201, r.text
    vid, token = r.json()["volunteer"]["id"], r.json()["token"]
    me = client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["id"], me["role"], me["name"], me["volunteer_id"]) == (
        resident["id"], "volunteer", "王志愿", vid)
    problem(client.get("/users/me", headers=auth), 401, "unauthorized")  # token replaced
    with session_maker(db)() as s:  # the order is still the same user's
        assert s.scalar(select(ServiceRequest.resident_id).where(
            ServiceRequest.id == order.json()["id"])) == resident["id"]
    # Signing in by code again finds the volunteer (it was a second account before).
    again = sign_in(client, phone, ask_code(client, caplog, phone))
    assert again["user"]["id"] == resident["id"]  # type: ignore[index]
    assert again["user"]["volunteer_id"] == vid  # type: ignore[index]
    problem(client.post("/volunteers", json=form,
                        headers={"Authorization": f"Bearer {again['token']}"}),
            409, "already_registered")
    # A staff account's number is not turned into a volunteer, even by its own token.
    staff = new_phone()
    with session_maker(db)() as s:
        _, staff_token = create_user(s, role="dispatcher", name="调度兼志愿", phone=staff)
        s.commit()
    body = problem(client.post("/volunteers", json={**form, "phone": staff},
                               headers={"Authorization": f"Bearer {staff_token}"}),
                   409, "phone_registered")
    assert "其他账号" in body["detail"]
