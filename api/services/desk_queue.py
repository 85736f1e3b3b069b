"""The dispatcher's queue: open orders by state and age, each with its SLA timer and duplicates.

Dispatchers and admins see every open order of the district; a 所/站 account those of its area
(:func:`api.services.escalation.station_area`). Duplicates are looked for among the orders the
user sees (:func:`api.services.duplicates.find_duplicates`): a dispatcher sees an order in one
站's area flagged beside its twin in the next; a 所/站 account is never shown the ids of orders
outside its area (it could not merge into them either).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import OPEN_STATES, RequestState, Role
from api.services.dispatch_errors import ForbiddenError
from api.services.duplicates import find_duplicates
from api.services.escalation import due_at, sla_minutes, station_area
from api.services.requests_view import area_names, mask_contact, sees_contact
from api.services.state_machine import ALLOCATORS, next_actions
from api.storage.models import ServiceRequest, Team, User, as_utc, utcnow
from geo import District
from geo.categories import category as category_of
from geo.registry import Level

#: Open states in lifecycle order (the queue's ``counts``).
_OPEN = sorted(OPEN_STATES, key=lambda s: s.rank)
#: Roles that use the workbench: those who allocate orders.
DESK_ROLES = ALLOCATORS


def desk_queue(
    session: Session,
    district: District,
    user: User,
    *,
    sla: Mapping[str, float],
    window_hours: float,
    walk_m: float,
    state: RequestState | None = None,
    level: Level | None = None,
    limit: int = 200,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the open orders the user allocates, oldest first, with timers and duplicates.

    Parameters
    ----------
    session
        A read session.
    district
        The district served.
    user
        A dispatcher, admin or 所/站 account.
    sla
        Minutes per category an order may wait at one level (the setting ``sla_minutes``).
    window_hours, walk_m
        Duplicate rule: created within this many hours, closer than this by walking.
    state, level
        Only orders in this (open) state, or answered for at this level.
    limit
        Most orders listed.
    now
        The time the timers are read at (default: now).

    Raises
    ------
    ForbiddenError
        If the user is not a dispatcher, admin or 所/站 account.
    """
    if user.role not in DESK_ROLES:
        msg = f"{user.role.zh}不能使用派单工作台"
        raise ForbiddenError(msg, role=user.role)
    now = now or utcnow()
    mine = list(session.scalars(
        select(ServiceRequest)
        .where(ServiceRequest.district == district.name, ServiceRequest.state.in_(_OPEN))
        .order_by(ServiceRequest.created_at, ServiceRequest.id)
    ))
    if user.role == Role.STATION:
        area = station_area(session, user)
        mine = [r for r in mine if r.area_site_id in area]
    # Among the orders the user sees only: a pair is a pair whatever else is open.
    dups = find_duplicates(district, mine, window_hours=window_hours, walk_m=walk_m)
    counts = {str(s): 0 for s in _OPEN}
    overdue = 0
    due: dict[int, datetime | None] = {}
    for r in mine:
        counts[str(r.state)] += 1
        d = due[r.id] = due_at(r, sla)
        overdue += d is not None and d <= now
    chosen = [r for r in mine
              if (state is None or r.state == state) and (level is None or r.level == level)]
    page = chosen[:limit]
    team_ids = {r.team_id for r in page if r.team_id}
    teams = dict(session.execute(
        select(Team.team_id, Team.name).where(Team.team_id.in_(team_ids))).all()
    ) if team_ids else {}
    areas = area_names(session, page)
    items = []
    for r in page:
        created = as_utc(r.created_at)
        d = due[r.id]
        show = sees_contact(user, r)
        items.append({
            "id": r.id,
            "category": r.category,
            "category_zh": category_of(r.category).name,
            "state": r.state,
            "state_zh": r.state.zh,
            "created_at": created,
            "age_minutes": round((now - created).total_seconds() / 60, 1),
            "sla_minutes": sla_minutes(r.category, sla) if d is not None else None,
            "due_at": d,
            "overdue": d is not None and d <= now,
            "level": r.level,
            "level_zh": Level(r.level).short if r.level else None,
            "area_site_id": r.area_site_id,
            "area_name": areas.get(r.area_site_id) if r.area_site_id else None,
            "team_id": r.team_id,
            "team_name": teams.get(r.team_id) if r.team_id else None,
            "description": r.description,
            "contact": r.contact if show else mask_contact(r.contact),
            "contact_masked": not show,
            "lon": r.lon,
            "lat": r.lat,
            "round": r.round,
            "next_actions": next_actions(r.state, user.role),
            "duplicates": [{"id": x.id, "walk_m": x.walk_m} for x in dups.get(r.id, [])],
        })
    return {"now": now, "items": items, "count": len(chosen), "counts": counts,
            "overdue": overdue, "sla_minutes": dict(sla)}
