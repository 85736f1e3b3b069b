"""Who answers for an order, for how long, and escalation of what is overdue (站 → 所 → 中心).

An order starts at the 站 (community position) nearest to it by walking on the street network
(:func:`assign_area`, from the walks dispatch already keeps for every position); with no 站 in
reach, the nearest 所, else the 中心. While it waits for a team (``submitted`` or
``dispatched``) its SLA timer runs from ``level_since``: the setting ``sla_minutes`` per
category. An order overdue at its level is handed to the position above (the registry's
``parent_id``), its clock restarted, a step ``escalate`` written to its history and an outbox
event recorded (:func:`escalate_overdue`). The server runs a pass every ``escalation_poll_s``
seconds (:func:`start_thread`); ``practice-circle desk escalate`` runs one by hand.

A 所/站 account (role ``station``) allocates the orders of its area (:func:`station_area`): those
answered for by its own position or by any position under it.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import WAITING_STATES, Role
from api.services.accounts import hash_token
from api.services.matching import position_walk
from api.services.state_machine import relevel
from api.storage.models import Position, ServiceRequest, User, as_utc, utcnow
from geo import District
from geo.network import EdgePositions
from geo.registry import Level

log = logging.getLogger(__name__)

#: Levels an order may be answered for at, lowest first: escalation climbs this list.
CHAIN: tuple[Level, ...] = (Level.COMMUNITY, Level.TOWNSHIP, Level.CENTER)
#: Fallback SLA when the settings name neither the category nor ``"*"``.
DEFAULT_SLA_MINUTES = 120.0


def sla_minutes(category: str, sla: Mapping[str, float]) -> float:
    """Return the minutes an order of ``category`` may wait at one level."""
    return float(sla.get(category, sla.get("*", DEFAULT_SLA_MINUTES)))


def due_at(req: ServiceRequest, sla: Mapping[str, float]) -> datetime | None:
    """Return when a waiting order becomes overdue at its level (``None``: no timer runs)."""
    if req.state not in WAITING_STATES:
        return None
    since = req.level_since or req.created_at
    return as_utc(since) + timedelta(minutes=sla_minutes(req.category, sla))


def assign_area(
    district: District, at: EdgePositions
) -> tuple[Level, str] | tuple[None, None]:
    """Return the level and position that answer for an order attached to the network at ``at``.

    The nearest open 站 by walking (the walks dispatch keeps from every position, a lookup);
    with none reachable the nearest 所, then the 中心. ``(None, None)`` if the district has none.
    """
    walk = position_walk(district)
    metres = walk.walk_m(at)
    levels = district.positions["level"].to_numpy(dtype=object)
    for level in CHAIN:
        mine = np.flatnonzero((levels == level.value) & np.isfinite(metres))
        if len(mine):
            best = mine[np.argmin(metres[mine])]
            return level, str(walk.site_ids[best])
    for level in CHAIN:  # none reachable: the position of the highest level there is
        mine = np.flatnonzero(levels == level.value)
        if len(mine):
            return level, str(walk.site_ids[mine[0]])
    return None, None


def station_area(session: Session, user: User) -> frozenset[str]:
    """Return the positions a 所/站 account allocates for: its own and every one under it.

    Empty for an account with no position (it allocates nothing).
    """
    if not user.site_id:
        return frozenset()
    own = session.get(Position, user.site_id)
    if own is None:
        return frozenset()
    rows = session.execute(
        select(Position.site_id, Position.parent_id).where(Position.district == own.district)
    ).all()
    children: dict[str, list[str]] = {}
    for site_id, parent in rows:
        if parent:
            children.setdefault(parent, []).append(site_id)
    area, todo = {own.site_id}, [own.site_id]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in area:
                area.add(child)
                todo.append(child)
    return frozenset(area)


def system_user(session: Session) -> User:
    """Return the user the server's own moves are recorded under: role ``system`` (系统).

    Found by its role, made on first use. It never signs in: inactive, with the hash of a
    random token nobody was given, no phone, and ``users create`` refuses the role. Two
    processes making it at once leave two such rows, harmless: each reads the one with the
    lowest id, so the history names one actor from then on.
    """
    found = session.scalar(
        select(User).where(User.role == Role.SYSTEM).order_by(User.id).limit(1))
    if found is not None:
        return found
    user = User(name=Role.SYSTEM.zh, role=Role.SYSTEM, active=False,
                token_hash=hash_token(secrets.token_urlsafe(32)))
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class Escalation:
    """One order handed up: from which position to which."""

    request_id: int
    from_site: str
    to_site: str
    to_level: Level


def escalate_overdue(
    session: Session, *, now: datetime | None = None, sla: Mapping[str, float],
    district: str | None = None,
) -> list[Escalation]:
    """Hand every order overdue at its level to the position above (in the caller's transaction).

    Parameters
    ----------
    session
        A writing session; the caller commits.
    now
        The time the pass runs at (tests move it on instead of waiting).
    sla
        Minutes per category (``"*"``: the rest), as the setting ``sla_minutes``.
    district
        Only this district (default: all).

    Returns
    -------
    list of Escalation
        The orders moved, one step each (an order two levels overdue climbs one per pass).
    """
    now = now or utcnow()
    shortest = min([*sla.values(), DEFAULT_SLA_MINUTES]) if sla else DEFAULT_SLA_MINUTES
    where = [ServiceRequest.state.in_(sorted(WAITING_STATES)),
             ServiceRequest.level_since.is_not(None),
             ServiceRequest.level.in_([Level.COMMUNITY, Level.TOWNSHIP]),
             ServiceRequest.level_since <= now - timedelta(minutes=shortest)]
    if district is not None:
        where.append(ServiceRequest.district == district)
    candidates = [
        r for r in session.scalars(select(ServiceRequest).where(*where).order_by(ServiceRequest.id))
        if (due := due_at(r, sla)) is not None and due <= now
    ]
    if not candidates:
        return []
    # A district has a few hundred positions: read them all, to climb past closed ones.
    positions = {p.site_id: p for p in session.scalars(
        select(Position).where(Position.district.in_({r.district for r in candidates})))}
    actor = system_user(session)
    done = []
    for req in candidates:
        here = positions.get(req.area_site_id or "")
        up = _open_parent(positions, here)
        if here is None or up is None:
            continue  # nothing above (or the registry lost it): stays, overdue, on the queue
        minutes = math.floor((now - as_utc(req.level_since or req.created_at)).total_seconds()
                             / 60)
        why = "超时未派单，自动升级" if req.state == "submitted" else "超时未接单，自动升级"
        note = f"{here.name} → {up.name}：{why}（已等待 {minutes} 分钟）"
        there = f"{up.name}（{Level(up.level).short}）"
        messages = {
            "dispatcher": f"服务单 #{req.id} 在{here.name}（{Level(here.level).short}）"
                          f"超时未处理，已升级至{there}",
            "resident": f"您的服务单 #{req.id} 已转由{there}优先处理",
        }
        from_site = here.site_id
        if relevel(session, req, actor, level=Level(up.level), site_id=up.site_id, note=note,
                   messages=messages, now=now, follower_news=f"已转由{there}优先处理"):
            done.append(Escalation(req.id, from_site, up.site_id, Level(up.level)))
    return done


def _open_parent(positions: Mapping[str, Position], here: Position | None) -> Position | None:
    """Return the nearest open position above ``here`` (a closed 所 is passed over)."""
    seen: set[str] = set()
    up = positions.get(here.parent_id or "") if here is not None else None
    while up is not None and not up.active and up.site_id not in seen:
        seen.add(up.site_id)
        up = positions.get(up.parent_id or "")
    return up if up is not None and up.active else None


def escalate_due(
    session_factory: Callable[[], Session], *, sla: Mapping[str, float],
    now: datetime | None = None,
) -> list[Escalation]:
    """Run one escalation pass in a transaction of its own."""
    with session_factory() as session, session.begin():
        return escalate_overdue(session, now=now, sla=sla)


def run_forever(session_factory: Callable[[], Session], *, sla: Mapping[str, float],
                poll_s: float, stop: threading.Event) -> None:
    """Escalate overdue orders every ``poll_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            moved = escalate_due(session_factory, sla=sla)
            if moved:
                log.info("escalated %d overdue orders", len(moved))
        except Exception:  # keep the loop alive through a database hiccup
            log.exception("escalation pass failed")
        stop.wait(poll_s)


def start_thread(session_factory: Callable[[], Session], *, sla: Mapping[str, float],
                 poll_s: float) -> tuple[threading.Thread, threading.Event]:
    """Start :func:`run_forever` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(session_factory,),
                              kwargs={"sla": sla, "poll_s": poll_s, "stop": stop},
                              name="desk-escalation", daemon=True)
    thread.start()
    return thread, stop
