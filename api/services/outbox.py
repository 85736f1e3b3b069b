"""The notifications outbox: events written with the change, delivered to a webhook.

:func:`record` adds an event in the caller's transaction, so an event exists exactly when its
change was committed. :func:`deliver_due` posts due events to the configured webhook as JSON
(``id``, ``type``, ``occurred_at``, ``subject``, ``message_zh``), signed with
``X-Signature: sha256=<hex HMAC-SHA256 of the body>``; a 2xx answer marks the event delivered,
anything else retries it later with exponential backoff. Delivery is at least once: a receiver
drops repeats by ``id`` (also sent as ``X-Event-Id``).

Two deliverers may run at once: each claims its batch in a short transaction (PostgreSQL:
``FOR UPDATE SKIP LOCKED``; SQLite: ``BEGIN IMMEDIATE`` serializes the claims) by pushing the
rows' next attempt past a lease, then posts without holding a lock. A deliverer that dies
mid-batch leaves its rows to be picked up again when the lease runs out.

Activity reminders have no change to ride on: :func:`remind_due` records them before each
delivery pass, once per (activity, volunteer, start time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.domain import BEIJING, RequestState, SignupState
from api.storage.models import Activity, OutboxEvent, Position, Signup, as_utc, utcnow

log = logging.getLogger(__name__)

#: Seconds one POST may take.
POST_TIMEOUT_S = 10.0
#: First retry after this many seconds, doubling with each failure up to :data:`MAX_BACKOFF_S`.
BASE_BACKOFF_S = 5.0
MAX_BACKOFF_S = 3600.0
#: Confirmed volunteers are reminded of an activity starting within this time.
REMIND_AHEAD = timedelta(hours=24)
_REMINDER_NS = uuid.UUID("6f1c2d0e-5b7a-4c1e-9a53-2f0d8e4b7c19")


def record(session: Session, type_: str, subject: dict[str, Any], message_zh: str, *,
           at: datetime | None = None, event_id: str | None = None) -> OutboxEvent:
    """Add an event to the outbox in the caller's transaction (never commits).

    Parameters
    ----------
    session
        The session making the change the event tells of.
    type_
        Dotted event type, e.g. ``request.dispatch`` or ``signup.promoted``.
    subject
        What changed (JSON-serializable): ids and the new state.
    message_zh
        The notification text residents and volunteers read (zh-CN).
    at
        When the change happened (default: now); also the first delivery time.
    event_id
        A fixed id for an event that must be recorded at most once (default: a random one).
    """
    when = at or utcnow()
    event = OutboxEvent(event_id=event_id or str(uuid.uuid4()), type=type_,
                        subject=json.dumps(subject, ensure_ascii=False, sort_keys=True),
                        message_zh=message_zh, occurred_at=when, attempts=0,
                        next_attempt_at=when)
    session.add(event)
    return event


def record_request(session: Session, *, request_id: int, action: str, state: str,
                   team_id: str | None, district: str, at: datetime) -> OutboxEvent:
    """Record a service request's move (``request.<action>``) with its new state."""
    zh = RequestState(state).zh
    return record(session, f"request.{action}",
                  {"request_id": request_id, "state": str(state), "team_id": team_id,
                   "district": district},
                  f"服务单 #{request_id} 状态更新为「{zh}」", at=at)


def record_reminders(session: Session, *, now: datetime,
                     ahead: timedelta = REMIND_AHEAD) -> int:
    """Record an ``activity.reminder`` for each confirmed sign-up starting within ``ahead``.

    Each (activity, volunteer, start time) is reminded once: its event id is derived from
    them, and the outbox's unique ``event_id`` refuses a second. Moving an activity's start
    reminds again. Returns how many reminders were recorded (in the caller's transaction).
    """
    rows = session.execute(
        select(Activity, Signup.volunteer_id, Position.name)
        .join(Signup, Signup.activity_id == Activity.id)
        .join(Position, Position.site_id == Activity.site_id)
        .where(Signup.state == SignupState.CONFIRMED, Activity.cancelled.is_(False),
               Activity.starts_at > now, Activity.starts_at <= now + ahead)
        .order_by(Activity.starts_at, Activity.id, Signup.volunteer_id)).all()
    wanted = {}
    for activity, volunteer_id, place in rows:
        starts = as_utc(activity.starts_at)
        key = f"{activity.id}:{volunteer_id}:{starts.isoformat()}"
        wanted[str(uuid.uuid5(_REMINDER_NS, key))] = (activity, volunteer_id, place, starts)
    if not wanted:
        return 0
    known = set(session.scalars(select(OutboxEvent.event_id)
                                .where(OutboxEvent.event_id.in_(list(wanted)))))
    for event_id, (activity, volunteer_id, place, starts) in wanted.items():
        if event_id in known:
            continue
        local = starts.astimezone(BEIJING)
        record(session, "activity.reminder",
               {"activity_id": activity.id, "volunteer_id": volunteer_id,
                "starts_at": starts.isoformat(), "district": activity.district},
               f"活动提醒：「{activity.title}」将于{local.month}月{local.day}日 "
               f"{local:%H:%M} 在{place}开始，请准时参加", at=now, event_id=event_id)
    return len(wanted) - len(known)


def remind_due(session_factory: Callable[[], Session], *, now: datetime | None = None) -> int:
    """Record the due activity reminders in a transaction of their own (0 if another won)."""
    try:
        with session_factory() as session, session.begin():
            return record_reminders(session, now=now or utcnow())
    except IntegrityError:  # another deliverer recorded the same reminders first
        return 0


def body_of(event: OutboxEvent) -> bytes:
    """Make the JSON body posted for an event (UTF-8, zh-CN text unescaped)."""
    payload = {
        "id": event.event_id,
        "type": event.type,
        "occurred_at": as_utc(event.occurred_at).isoformat(),
        "subject": json.loads(event.subject),
        "message_zh": event.message_zh,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """Sign a body: ``sha256=<hex HMAC-SHA256>``, the ``X-Signature`` header value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """Return the wait after ``attempts`` failures: 5 s, 10 s, 20 s... at most 1 h."""
    return timedelta(seconds=min(BASE_BACKOFF_S * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


@dataclass(frozen=True)
class Delivery:
    """What one :func:`deliver_due` pass did."""

    delivered: int
    failed: int


def _claim(session_factory: Callable[[], Session], *, now: datetime, batch: int,
           lease: timedelta) -> list[tuple[int, bytes, str, int]]:
    with session_factory() as session, session.begin():
        query = (select(OutboxEvent)
                 .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.next_attempt_at <= now)
                 .order_by(OutboxEvent.id).limit(batch))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        claimed = []
        for event in rows:
            event.next_attempt_at = now + lease  # others skip it until the lease runs out
            claimed.append((event.id, body_of(event), event.event_id, event.attempts))
    return claimed


def deliver_due(session_factory: Callable[[], Session], url: str, secret: str, *,
                now: datetime | None = None, batch: int = 20,
                client: httpx.Client | None = None) -> Delivery:
    """Post the due, undelivered events to the webhook, oldest first.

    Parameters
    ----------
    session_factory
        Makes the sessions claiming and settling the events (each its own transaction).
    url, secret
        The webhook and the HMAC key signing each body.
    now
        The time the pass runs at (tests move it on instead of sleeping).
    batch
        Most events claimed in one pass.
    client
        An httpx client to reuse (default: one for this pass).

    Returns
    -------
    Delivery
        How many were delivered and how many will be retried.
    """
    now = now or utcnow()
    lease = timedelta(seconds=POST_TIMEOUT_S * batch + 30)
    claimed = _claim(session_factory, now=now, batch=batch, lease=lease)
    if not claimed:
        return Delivery(0, 0)
    own = client is None
    http = client or httpx.Client(timeout=POST_TIMEOUT_S)
    results: list[tuple[int, int, str | None]] = []
    try:
        for row_id, body, event_id, attempts in claimed:
            error: str | None = None
            try:
                answer = http.post(url, content=body, headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "X-Signature": signature(secret, body), "X-Event-Id": event_id})
                if not answer.is_success:
                    error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            results.append((row_id, attempts, error))
    finally:
        if own:
            http.close()
    with session_factory() as session, session.begin():
        for row_id, attempts, error in results:
            event = session.get(OutboxEvent, row_id)
            if event is None:
                continue
            if error is None:
                event.delivered_at, event.last_error = now, None
            else:
                event.attempts = attempts + 1
                event.next_attempt_at = now + backoff(attempts + 1)
                event.last_error = error[:500]
                log.warning("webhook delivery of %s failed: %s", event.event_id, error)
    failed = sum(1 for _, _, e in results if e is not None)
    return Delivery(len(results) - failed, failed)


def run_forever(session_factory: Callable[[], Session], url: str, secret: str, *,
                poll_s: float, stop: threading.Event) -> None:
    """Deliver due events every ``poll_s`` seconds until ``stop`` is set (at once while busy)."""
    with httpx.Client(timeout=POST_TIMEOUT_S) as client:
        while not stop.is_set():
            try:
                remind_due(session_factory)
                done = deliver_due(session_factory, url, secret, client=client)
            except Exception:  # keep the loop alive through a database hiccup
                log.exception("webhook delivery pass failed")
                done = Delivery(0, 0)
            if done.delivered + done.failed == 0 or done.failed:
                stop.wait(poll_s)


def start_thread(session_factory: Callable[[], Session], url: str, secret: str, *,
                 poll_s: float) -> tuple[threading.Thread, threading.Event]:
    """Start :func:`run_forever` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(session_factory, url, secret),
                              kwargs={"poll_s": poll_s, "stop": stop},
                              name="outbox-delivery", daemon=True)
    thread.start()
    return thread, stop
