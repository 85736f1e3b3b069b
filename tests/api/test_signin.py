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

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

import geo
from api.services import outbox
from api.services.accounts import create_user, hash_token
from api.settings import get_settings
from api.storage.models import OutboxEvent, SignInCode, User
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
from tests.api.test_outbox import SECRET, Receiver

LOG_LINE = re.compile(r"一次性验证码 (\d{3}\*{4}\d{4}): (\d{6})")


@pytest.fixture
def signin_env(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:  # noqa: F811
    """No webhook, codes resendable at once (the 60 s rule has a test of its own)."""
    with session_maker(db)() as s:
        s.execute(delete(SignInCode))
        s.commit()
    monkeypatch.delenv("PRACTICE_CIRCLE_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("PRACTICE_CIRCLE_SIGNIN_RESEND_S", "0")
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"PRACTICE_CIRCLE_{name.upper()}", value)
    get_settings.cache_clear()


def ask_code(client: TestClient, caplog: pytest.LogCaptureFixture, phone: str) -> str:  # noqa: F811
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


def sign_in(client: TestClient, phone: str, code: str) -> dict[str, object]:  # noqa: F811
    r = client.post("/auth/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_new_number_signs_in_as_a_resident_and_is_kept_only_hashed(
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
    client: TestClient, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
    client: TestClient, signin_env: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_env(signin_env, signin_code_minutes="0.01")  # 0.6 s
    phone = new_phone()
    code = ask_code(client, caplog, phone)
    time.sleep(0.8)
    problem(client.post("/auth/sessions", json={"phone": phone, "code": code}), 401, "bad_code")


def test_one_code_per_number_per_minute(
    client: TestClient, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
    client: TestClient, actors: Actors, db: str, district: geo.District,  # noqa: F811
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
    client: TestClient, actors: Actors, db: str, district: geo.District,  # noqa: F811
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
    client: TestClient, db: str, signin_env: pytest.MonkeyPatch,  # noqa: F811
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
