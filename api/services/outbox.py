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

Each event is worded for one audience (``audience``; the subject names the recipient): a move of
a service request records one event for the resident (``resident_id``), one for the team it
concerns (``team_id``; also the team that lost it to a re-dispatch, rejection or merge) and, when
it waits for dispatch, one for the dispatchers (``district``); residents whose orders were merged
into it hear of its moves too.
One-time sign-in codes (``auth.code``, audience ``phone``, the whole number in the subject for
the SMS gateway) take the same path.

An event that still fails after ``webhook_max_attempts`` attempts is a dead letter: ``failed_at``
is set and it is not tried again until ``practice-circle notify retry-failed``. Each pass also
cleans up: delivered events older than ``outbox_keep_days`` are deleted, a sign-in code as soon
as it is delivered (or once it has expired undelivered), so codes do not linger.

Activity reminders have no change to ride on: :func:`remind_due` records them before each
delivery pass, once per (activity, volunteer, start time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.domain import BEIJING, RequestState, SignupState
from api.settings import get_settings
from api.storage.models import (
    Activity,
    OutboxEvent,
    Position,
    ServiceRequest,
    Signup,
    Team,
    as_utc,
    utcnow,
)
from geo.categories import CATEGORY_CODES
from geo.categories import category as category_of

log = logging.getLogger(__name__)

#: Seconds one POST may take.
POST_TIMEOUT_S = 10.0
#: First retry after this many seconds, doubling with each failure up to :data:`MAX_BACKOFF_S`.
BASE_BACKOFF_S = 5.0
MAX_BACKOFF_S = 3600.0
#: Confirmed volunteers are reminded of an activity starting within this time.
REMIND_AHEAD = timedelta(hours=24)
_REMINDER_NS = uuid.UUID("6f1c2d0e-5b7a-4c1e-9a53-2f0d8e4b7c19")
#: Seconds between two clean-ups by a running deliverer.
CLEAN_EVERY_S = 60.0
#: Event type of a one-time sign-in code (deleted from the outbox once delivered).
AUTH_CODE = "auth.code"


def record(session: Session, type_: str, subject: dict[str, Any], message_zh: str, *,
           at: datetime | None = None, event_id: str | None = None,
           audience: str | None = None) -> OutboxEvent:
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
    audience
        Who the message is worded for (``resident``, ``team``, ``dispatcher``, ``volunteer``,
        ``phone``); the subject names the recipient.
    """
    when = at or utcnow()
    event = OutboxEvent(event_id=event_id or str(uuid.uuid4()), type=type_,
                        subject=json.dumps(subject, ensure_ascii=False, sort_keys=True),
                        message_zh=message_zh, occurred_at=when, attempts=0,
                        next_attempt_at=when, audience=audience)
    session.add(event)
    return event


def _team_name(session: Session, team_id: str | None) -> str:
    team = session.get(Team, team_id) if team_id else None
    return team.name if team is not None else "服务队伍"


def _wording(action: str, *, rid: int, state: RequestState, cat: str, team: str,
             reason: str | None, merged_into: int | None) -> dict[str, str]:
    """Return the message for each audience that should hear of a move."""
    resident = {
        "create": f"您的服务单 #{rid}（{cat}）已提交，正在为您派单",
        "dispatch": f"您的服务单 #{rid} 已派单给{team}，请留意队伍联系",
        "redispatch": f"您的服务单 #{rid} 已改派给{team}，请留意队伍联系",
        "accept": f"{team}已接单：您的服务单 #{rid} 服务中",
        "decline": f"您的服务单 #{rid} 正在重新派单，请耐心等待",
        "complete": f"您的服务单 #{rid} 已完成服务，欢迎评价",
        "cancel": f"您的服务单 #{rid} 已取消",
        "reject": f"您的服务单 #{rid} 已驳回" + (f"：{reason}" if reason else ""),
        "merge": f"您的服务单 #{rid} 与服务单 #{merged_into} 内容相同，已合并处理"
        if merged_into else f"您的服务单 #{rid} 已合并处理",
    }
    team_words = {
        "dispatch": f"新派单 #{rid}：{cat}，请尽快接单",
        "redispatch": f"新派单 #{rid}：{cat}（改派），请尽快接单",
        "cancel": f"服务单 #{rid}（{cat}）已取消，无需再服务",
        "review": f"居民已评价服务单 #{rid}（{cat}），感谢您的服务",
    }
    dispatcher = {
        "create": f"新服务单 #{rid}：{cat}，待派单",
        "decline": f"服务单 #{rid}（{cat}）被{team}拒单，待重新派单",
    }
    words = {}
    if action != "review":  # the resident reviewed it: nothing to tell them
        words["resident"] = resident.get(action, f"您的服务单 #{rid} 状态更新为「{state.zh}」")
    if action in team_words:
        words["team"] = team_words[action]
    if action in dispatcher:
        words["dispatcher"] = dispatcher[action]
    return words


#: Moves that take an order away from the team that held it, as that team is told of them.
_TEAM_LOSES = {"redispatch": "已改派给其他队伍", "reject": "已驳回", "merge": "已合并"}


def _follower_news(action: str, *, team: str, reason: str | None,
                   merged_into: int | None) -> str | None:
    """Say what happened to a kept order, for residents whose orders were merged into it."""
    news = {
        "dispatch": f"已派单给{team}",
        "redispatch": f"已改派给{team}",
        "accept": f"{team}已接单，服务中",
        "decline": "正在重新派单",
        "complete": "已完成服务",
        "cancel": "已取消",
        "reject": "已驳回" + (f"：{reason}" if reason else ""),
        "merge": f"已并入服务单 #{merged_into}" if merged_into else "已合并处理",
    }
    return news.get(action)  # a review is the kept order's resident's own business


def record_request(session: Session, *, request_id: int, action: str, state: str,
                   team_id: str | None, district: str, at: datetime,
                   previous_team_id: str | None = None) -> list[OutboxEvent]:
    """Record a service request's move (``request.<action>``), once per audience.

    The resident hears of every move but their own review; the team of a dispatch, a
    re-dispatch, a cancellation and a review; the dispatchers of an order waiting for dispatch
    (new, or declined). The team that held the order (``previous_team_id``, as it was before
    the move) hears when a re-dispatch, a rejection or a merge takes it away ("…，无需前往").
    Residents whose orders were merged into this one hear of its moves too
    (:func:`record_for_followers`); when it is cancelled, the dispatchers hear that those still
    wait. Each subject has the request, its new state, team and
    district, the action, and the recipient (``resident_id``; the team is ``team_id``;
    dispatchers by ``district``). Call it in the transaction of the move, after the request
    row is written.
    """
    target = RequestState(state)
    # Read the columns from the database: the move updated the row behind the ORM's back.
    row = session.execute(
        select(ServiceRequest.resident_id, ServiceRequest.category,
               ServiceRequest.reject_reason, ServiceRequest.merged_into)
        .where(ServiceRequest.id == request_id)).one()
    cat = category_of(row.category).name if row.category in CATEGORY_CODES else row.category
    words = _wording(action, rid=request_id, state=target, cat=cat,
                     team=_team_name(session, team_id), reason=row.reject_reason,
                     merged_into=row.merged_into)
    base = {"request_id": request_id, "state": str(target), "team_id": team_id,
            "district": district, "action": action, "category": row.category}
    if team_id is None:
        words.pop("team", None)  # no team holds it (a cancel before dispatch)
    made = record_per_audience(session, f"request.{action}", base, words,
                               resident_id=row.resident_id, at=at)
    lost = _TEAM_LOSES.get(action)
    if lost is not None and previous_team_id is not None and (
            action != "redispatch" or previous_team_id != team_id):
        made.append(record(
            session, f"request.{action}",
            {**base, "team_id": previous_team_id, "audience": "team"},
            f"服务单 #{request_id}（{cat}）{lost}，无需前往", at=at, audience="team"))
    news = _follower_news(action, team=_team_name(session, team_id), reason=row.reject_reason,
                          merged_into=row.merged_into)
    if news is not None:
        followers = record_for_followers(session, f"request.{action}", base, request_id, news,
                                         at=at)
        made += followers
        if action == "cancel" and followers:
            # the kept order is gone, but the duplicates merged into it still need a service
            ids = [json.loads(e.subject)["merged_request_id"] for e in followers]
            waiting = "、".join(f"#{i}" for i in ids)
            made.append(record(
                session, "request.cancel",
                {**base, "audience": "dispatcher", "merged_request_ids": ids},
                f"服务单 #{request_id} 已取消，但并入它的服务单 {waiting} 仍待服务，请处理",
                at=at, audience="dispatcher"))
    return made


def record_per_audience(session: Session, type_: str, base: dict[str, Any],
                        words: Mapping[str, str], *, resident_id: int,
                        at: datetime) -> list[OutboxEvent]:
    """Record one event per audience of ``words`` (audience → zh-CN text) about a request.

    Each subject is ``base`` plus its ``audience``; the resident's also names them
    (``resident_id``).
    """
    made = []
    for audience, text in words.items():
        subject = {**base, "audience": audience}
        if audience == "resident":
            subject["resident_id"] = resident_id
        made.append(record(session, type_, subject, text, at=at, audience=audience))
    return made


def record_for_followers(session: Session, type_: str, base: dict[str, Any], request_id: int,
                         news: str, *, at: datetime) -> list[OutboxEvent]:
    """Tell the residents of orders merged into this one (or into those) what happened to it.

    One event per merged order (audience ``resident``; the subject names the order kept,
    ``request_id``, their own, ``merged_request_id``, and ``resident_id``), worded
    "您的服务单 #M 已并入服务单 #K，该单<news>". The kept order's own resident is told
    by :func:`record_request`.
    """
    made, todo, seen = [], [request_id], {request_id}
    while todo:  # merges of merges: follow every order that ended up in this one
        rows = session.execute(
            select(ServiceRequest.id, ServiceRequest.resident_id)
            .where(ServiceRequest.merged_into.in_(todo),
                   ServiceRequest.state == RequestState.MERGED)
            .order_by(ServiceRequest.id)).all()
        rows = [r for r in rows if r.id not in seen]
        todo = [r.id for r in rows]
        seen.update(todo)
        for r in rows:
            subject = {**base, "audience": "resident", "merged_request_id": r.id,
                       "resident_id": r.resident_id}
            made.append(record(session, type_, subject,
                               f"您的服务单 #{r.id} 已并入服务单 #{request_id}，该单{news}",
                               at=at, audience="resident"))
    return made


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
                "starts_at": starts.isoformat(), "district": activity.district,
                "audience": "volunteer"},
               f"活动提醒：「{activity.title}」将于{local.month}月{local.day}日 "
               f"{local:%H:%M} 在{place}开始，请准时参加", at=now, event_id=event_id,
               audience="volunteer")
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


def backoff(attempts: int, *, base_s: float = BASE_BACKOFF_S,
            max_s: float = MAX_BACKOFF_S) -> timedelta:
    """Return the wait after ``attempts`` failures: 5 s, 10 s, 20 s... at most 1 h (defaults)."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


@dataclass(frozen=True)
class Delivery:
    """What one :func:`deliver_due` pass did."""

    delivered: int
    failed: int
    #: Of the failed, how many were given up for good this pass (dead letters).
    given_up: int = 0


@dataclass(frozen=True)
class Policy:
    """How the deliverer retries and what it keeps (from the settings unless given)."""

    timeout_s: float = POST_TIMEOUT_S
    base_backoff_s: float = BASE_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    max_attempts: int = 12
    keep: timedelta = timedelta(days=7)
    code_ttl: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls) -> Policy:
        """Read the policy from the ``PRACTICE_CIRCLE_WEBHOOK_*`` and ``OUTBOX_*`` settings."""
        s = get_settings()
        return cls(timeout_s=s.webhook_timeout_s, base_backoff_s=s.webhook_backoff_s,
                   max_backoff_s=s.webhook_backoff_max_s, max_attempts=s.webhook_max_attempts,
                   keep=timedelta(days=s.outbox_keep_days),
                   code_ttl=timedelta(minutes=s.signin_code_minutes))


def _claim(session_factory: Callable[[], Session], *, now: datetime, batch: int,
           lease: timedelta, code_ttl: timedelta) -> list[tuple[int, bytes, str, int, str]]:
    # Sign-in codes first, and none that has expired: someone is waiting for each, and a
    # backlog of older events must not outlive them.
    is_code = OutboxEvent.type == AUTH_CODE
    with session_factory() as session, session.begin():
        query = (select(OutboxEvent)
                 .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.failed_at.is_(None),
                        OutboxEvent.next_attempt_at <= now,
                        ~(is_code & (OutboxEvent.occurred_at < now - code_ttl)))
                 .order_by(case((is_code, 0), else_=1), OutboxEvent.id).limit(batch))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        claimed = []
        for event in rows:
            event.next_attempt_at = now + lease  # others skip it until the lease runs out
            claimed.append((event.id, body_of(event), event.event_id, event.attempts,
                            event.type))
    return claimed


def deliver_due(session_factory: Callable[[], Session], url: str, secret: str, *,
                now: datetime | None = None, batch: int = 20,
                client: httpx.Client | None = None, policy: Policy | None = None) -> Delivery:
    """Post the due, undelivered events to the webhook: sign-in codes first, then oldest first.

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
    policy
        Timeout, backoff and the attempts before giving up (default: from the settings).

    Returns
    -------
    Delivery
        How many were delivered and how many failed (to be retried, or given up).
    """
    now = now or utcnow()
    policy = policy or Policy.from_settings()
    # Long enough to post the whole batch, each POST at its timeout, and settle.
    lease = timedelta(seconds=policy.timeout_s * (batch + 3))
    claimed = _claim(session_factory, now=now, batch=batch, lease=lease,
                     code_ttl=policy.code_ttl)
    if not claimed:
        return Delivery(0, 0)
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout_s)
    results: list[tuple[int, int, str, str | None]] = []
    try:
        for row_id, body, event_id, attempts, type_ in claimed:
            error: str | None = None
            try:
                answer = http.post(url, content=body, headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "X-Signature": signature(secret, body), "X-Event-Id": event_id})
                if not answer.is_success:
                    error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            results.append((row_id, attempts, type_, error))
    finally:
        if own:
            http.close()
    given_up = 0
    with session_factory() as session, session.begin():
        for row_id, attempts, type_, error in results:
            event = session.get(OutboxEvent, row_id)
            if event is None or event.delivered_at is not None:
                continue  # another deliverer took it over after our lease ran out, and sent it
            if error is None and type_ == AUTH_CODE:
                session.delete(event)  # a sign-in code is not kept once sent
            elif error is None:
                event.delivered_at, event.last_error = now, None
            else:
                event.attempts = attempts + 1
                event.next_attempt_at = now + backoff(
                    attempts + 1, base_s=policy.base_backoff_s, max_s=policy.max_backoff_s)
                event.last_error = error[:500]
                if event.attempts >= policy.max_attempts:
                    event.failed_at = now
                    given_up += 1
                    log.error("webhook delivery of %s gave up after %d attempts: %s",
                              event.event_id, event.attempts, error)
                else:
                    log.warning("webhook delivery of %s failed: %s", event.event_id, error)
    failed = sum(1 for *_, e in results if e is not None)
    return Delivery(len(results) - failed, failed, given_up)


def clean_up(session_factory: Callable[[], Session], *, now: datetime | None = None,
             policy: Policy | None = None) -> int:
    """Delete delivered events older than the keep time, and stale sign-in codes.

    A sign-in code event is deleted once it has expired, delivered or not (an SMS with a code
    that no longer works helps nobody). Returns how many rows were deleted.
    """
    now = now or utcnow()
    policy = policy or Policy.from_settings()
    with session_factory() as session, session.begin():
        old = session.execute(delete(OutboxEvent).where(
            OutboxEvent.delivered_at.is_not(None),
            OutboxEvent.delivered_at < now - policy.keep))
        codes = session.execute(delete(OutboxEvent).where(
            OutboxEvent.type == AUTH_CODE, OutboxEvent.occurred_at < now - policy.code_ttl))
    return int(old.rowcount + codes.rowcount)  # type: ignore[attr-defined]


def counts(session: Session) -> dict[str, int]:
    """Count the outbox: ``pending`` (to be sent), ``delivered`` and ``failed`` (dead letters)."""
    state = case((OutboxEvent.delivered_at.is_not(None), "delivered"),
                 (OutboxEvent.failed_at.is_not(None), "failed"), else_="pending")
    rows = session.execute(select(state, func.count()).group_by(state)).tuples().all()
    found: dict[str, int] = dict(rows)
    return {k: int(found.get(k, 0)) for k in ("pending", "delivered", "failed")}


def retry_failed(session: Session, *, now: datetime | None = None) -> int:
    """Give the dead letters another round of attempts from now; return how many."""
    result = session.execute(
        update(OutboxEvent).where(OutboxEvent.failed_at.is_not(None),
                                  OutboxEvent.delivered_at.is_(None))
        .values(failed_at=None, attempts=0, next_attempt_at=now or utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


def run_forever(session_factory: Callable[[], Session], url: str, secret: str, *,
                poll_s: float, stop: threading.Event, batch: int = 20) -> None:
    """Deliver due events every ``poll_s`` seconds until ``stop`` is set (at once while busy).

    Each pass first records the due activity reminders; every :data:`CLEAN_EVERY_S` seconds
    (and at start) a pass also cleans up (:func:`clean_up`): a write, so not on every pass.
    """
    policy = Policy.from_settings()
    cleaned = float("-inf")
    with httpx.Client(timeout=policy.timeout_s) as client:
        while not stop.is_set():
            try:
                remind_due(session_factory)
                done = deliver_due(session_factory, url, secret, client=client, policy=policy,
                                   batch=batch)
                if time.monotonic() - cleaned > CLEAN_EVERY_S:
                    clean_up(session_factory, policy=policy)
                    cleaned = time.monotonic()
            except Exception:  # keep the loop alive through a database hiccup
                log.exception("webhook delivery pass failed")
                done = Delivery(0, 0)
            if done.delivered + done.failed == 0 or done.failed:
                stop.wait(poll_s)


def start_thread(session_factory: Callable[[], Session], url: str, secret: str, *,
                 poll_s: float, batch: int = 20) -> tuple[threading.Thread, threading.Event]:
    """Start :func:`run_forever` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(session_factory, url, secret),
                              kwargs={"poll_s": poll_s, "stop": stop, "batch": batch},
                              name="outbox-delivery", daemon=True)
    thread.start()
    return thread, stop
