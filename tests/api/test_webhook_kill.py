"""Notifications survive a dead receiver and a SIGKILLed server (SQLite and PostGIS).

A real ``uvicorn`` server delivers to a real webhook receiver on 127.0.0.1 (it checks each
``X-Signature`` and records ``X-Event-Id``). The receiver is down at first (nothing listens on
its port), comes up slow, and the server is SIGKILLed while it is posting; a new server on the
same database finishes the job. After de-duplication by id the receiver has every event of the
outbox exactly once, and a sign-in code that went out through the webhook signs in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import delete, func, select

from api.storage.models import OutboxEvent
from api.storage.session import session_maker
from tests.api.dispatch.helpers import Actors, Server, free_port, new_request
from tests.api.helpers import new_phone
from tests.api.test_outbox import SECRET, Receiver

#: Small retry settings keep the test short: first retry after 0.2 s, at most 1 s apart.
FAST = {
    "PRACTICE_CIRCLE_WEBHOOK_SECRET": SECRET,
    "PRACTICE_CIRCLE_WEBHOOK_POLL_S": "0.1",
    "PRACTICE_CIRCLE_WEBHOOK_BACKOFF_S": "0.2",
    "PRACTICE_CIRCLE_WEBHOOK_BACKOFF_MAX_S": "1",
    "PRACTICE_CIRCLE_WEBHOOK_TIMEOUT_S": "0.5",
    "PRACTICE_CIRCLE_WEBHOOK_BATCH": "4",
    "PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false",
    "PRACTICE_CIRCLE_SIGNIN_RESEND_S": "0",
}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def outbox_rows(url: str) -> list[OutboxEvent]:
    with session_maker(url)() as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def test_every_event_arrives_once_across_a_down_receiver_and_a_sigkill(
    db: str, actors: Actors, cache_dir: Path, tmp_path: Path,
) -> None:
    with session_maker(db)() as s:
        s.execute(delete(OutboxEvent))
        s.commit()
    port = free_port()  # the receiver's: nothing listens there yet
    env = {**FAST, "PRACTICE_CIRCLE_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"}
    server = Server(url=db, cache=cache_dir, log=tmp_path / "uvicorn.log", env=env)
    receiver: Receiver | None = None
    try:
        server.start()
        resident, dispatcher = actors.resident(), actors.dispatcher()
        with httpx.Client(base_url=server.base, timeout=30) as http:
            rids = []
            for _ in range(6):
                r = http.post("/requests", json=new_request("elderly"), headers=resident)
                assert r.status_code == 201, r.text
                rids.append(r.json()["id"])
            for rid in rids[:3]:
                r = http.post(f"/requests/{rid}/dispatch", headers=dispatcher)
                assert r.status_code == 200, r.text
        # 6 creates (resident, dispatchers) and 3 dispatches (resident, team).
        assert len(outbox_rows(db)) == 18
        # Down: every event is tried, fails, and waits for its retry; none is lost or given up.
        wait_for(lambda: all(e.attempts >= 1 for e in outbox_rows(db)), 20, "first attempts")
        rows = outbox_rows(db)
        assert all(e.delivered_at is None and e.failed_at is None for e in rows)
        assert any("Connect" in (e.last_error or "") for e in rows)

        # Up, slowly; the server dies while it posts.
        receiver = Receiver(SECRET, port=port, delay_s=0.15)
        wait_for(lambda: len(receiver.accepted()) >= 3, 20, "the first deliveries")
        server.kill()
        at_kill = set(receiver.accepted())
        assert 0 < len(at_kill) < 18, "killed mid-delivery"

        server.restart()
        with httpx.Client(base_url=server.base, timeout=30) as http:
            for _ in range(2):
                r = http.post("/requests", json=new_request("elderly"), headers=resident)
                assert r.status_code == 201, r.text
            # A sign-in code goes out through the same path, and works.
            phone = new_phone()
            assert http.post("/auth/codes", json={"phone": phone}).status_code == 202
            wait_for(lambda: any(p["body"]["type"] == "auth.code" for p in receiver.posts),
                     20, "the sign-in code")
            (sms,) = [p for p in receiver.posts if p["body"]["type"] == "auth.code"]
            assert sms["signed"] and sms["body"]["subject"]["phone"] == phone
            code = re.search(r"验证码为 (\d{6})", sms["body"]["message_zh"])
            assert code is not None
            r = http.post("/auth/sessions", json={"phone": phone, "code": code.group(1)})
            assert r.status_code == 200, r.text
            assert r.json()["user"]["role"] == "resident"

        def all_delivered() -> bool:
            rows = outbox_rows(db)
            return all(e.delivered_at is not None for e in rows)

        wait_for(all_delivered, 25, "every event delivered")
        rows = outbox_rows(db)
        assert len(rows) == 22  # 18 + 2 creates x 2 audiences; the code's event is gone
        with session_maker(db)() as s:
            assert s.scalar(select(func.count()).where(OutboxEvent.type == "auth.code")) == 0
        stored = {e.event_id for e in rows}
        got = [p for p in receiver.posts if p["accepted"]]
        assert all(p["signed"] and p["event_id"] == p["body"]["id"] for p in got)
        unique = {p["event_id"] for p in got} - {sms["event_id"]}
        assert unique == stored  # none lost, nothing that is not in the outbox
        # Each delivered body is the stored event, whichever server sent it.
        by_id = {e.event_id: e for e in rows}
        for p in got:
            if p["event_id"] in by_id:
                assert p["body"]["message_zh"] == by_id[p["event_id"]].message_zh
                assert p["body"]["type"] == by_id[p["event_id"]].type
        assert all(e.failed_at is None for e in rows)
    finally:
        server.kill()
        if receiver is not None:
            receiver.close()
