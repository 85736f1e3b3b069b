"""The lifecycle of a service request: which action leads where, who may take it, and the move.

A request moves ``submitted → dispatched → accepted → completed → reviewed``; ``cancel`` ends it
from any open state and ``decline`` sends a dispatched request back to the pool, counting a new
round. At the dispatcher's workbench a waiting request may be rejected (驳回, with a reason the
resident reads) or merged into a duplicate, and a dispatched or accepted one re-dispatched to
another team (a new round, like a decline). :func:`move` updates the request only if its
version is still the one read, so of many concurrent moves exactly one wins and the others see
the new state (409). ``(round, rank of state)`` grows with every move: states only move
forward. :func:`relevel` hands a request to another level (escalation) the same way, its state
unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.domain import OPEN_STATES, WAITING_STATES, RequestState, Role
from api.services import outbox
from api.services.dispatch_errors import InvalidTransitionError
from api.storage.models import ServiceRequest, Transition, User, utcnow
from geo.registry import Level


@dataclass(frozen=True)
class Action:
    """A lifecycle action: the states it starts from, the state it leads to, who may do it."""

    name: str
    zh: str
    sources: frozenset[RequestState]
    target: RequestState
    roles: frozenset[Role]


#: Who allocates orders: dispatchers and admins everywhere, 所/站 accounts in their area.
ALLOCATORS = frozenset({Role.DISPATCHER, Role.ADMIN, Role.STATION})
#: Who acts for a team: its account, or a volunteer who leads it (checked by the handler).
_TEAM = frozenset({Role.TEAM, Role.VOLUNTEER})
#: Who orders, reviews and cancels their own orders: residents, and volunteers (residents too;
#: the handler checks that the order is theirs).
ORDERERS = frozenset({Role.RESIDENT, Role.VOLUNTEER})
_SUBMITTED = frozenset({RequestState.SUBMITTED})
_DISPATCHED = frozenset({RequestState.DISPATCHED})
_ACCEPTED = frozenset({RequestState.ACCEPTED})
#: Actions after which the request starts a new round (it goes to another team).
NEW_ROUND = frozenset({"decline", "redispatch"})
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("dispatch", "派单", _SUBMITTED, RequestState.DISPATCHED, ALLOCATORS),
        Action("accept", "接单", WAITING_STATES, RequestState.ACCEPTED, _TEAM),
        Action("decline", "拒单", _DISPATCHED, RequestState.SUBMITTED, _TEAM),
        Action("complete", "完成服务", _ACCEPTED, RequestState.COMPLETED, _TEAM),
        Action("review", "评单", frozenset({RequestState.COMPLETED}), RequestState.REVIEWED,
               ORDERERS),
        Action("cancel", "取消", OPEN_STATES, RequestState.CANCELLED,
               ORDERERS | {Role.DISPATCHER, Role.ADMIN}),
        Action("reject", "驳回", WAITING_STATES, RequestState.REJECTED, ALLOCATORS),
        Action("merge", "合并", WAITING_STATES, RequestState.MERGED, ALLOCATORS),
        Action("redispatch", "改派", _DISPATCHED | _ACCEPTED, RequestState.DISPATCHED,
               ALLOCATORS),
    )
}


def next_actions(state: str, role: str | None = None) -> list[str]:
    """List the actions the state allows: to ``role``, or to some role when it is ``None``."""
    return [a.name for a in ACTIONS.values()
            if state in a.sources and (role is None or role in a.roles or role == Role.ADMIN)]


def progress(state: str, round_: int) -> tuple[int, int]:
    """Return a key that strictly grows with every allowed move."""
    return (round_, RequestState(state).rank)


def invalid(spec: Action, state: str) -> InvalidTransitionError:
    """Make the 409 for an action that does not fit the state (the state and what it allows)."""
    msg = f"当前状态为「{RequestState(state).zh}」，不能{spec.zh}"
    return InvalidTransitionError(msg, state=state, action=spec.name,
                                  allowed_actions=next_actions(state))


def _compare_and_set(session: Session, req: ServiceRequest, *also: Any,
                     **values: Any) -> bool:
    """Write ``values`` and the next version only if the row is still as read; say if it was.

    "As read" is the request's version and state, and any further conditions in ``also``.
    """
    result = session.execute(
        update(ServiceRequest)
        .where(ServiceRequest.id == req.id, ServiceRequest.version == req.version,
               ServiceRequest.state == req.state, *also)
        .values(version=req.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def move(
    session: Session,
    req: ServiceRequest,
    user: User,
    spec: Action,
    *,
    team_id: str | None,
    note: str = "",
    **values: Any,
) -> None:
    """Compare-and-set the state; exactly one of concurrent movers gets through.

    Writes the step to the request's history and refreshes ``req``.

    Raises
    ------
    InvalidTransitionError
        If another move got there first (with the state it left).
    """
    now = utcnow()
    previous_team = req.team_id
    new_round = req.round + (1 if spec.name in NEW_ROUND else 0)
    if not _compare_and_set(session, req, state=spec.target, round=new_round, updated_at=now,
                            team_id=team_id, **values):
        current = session.scalar(select(ServiceRequest.state).where(ServiceRequest.id == req.id))
        raise invalid(spec, str(current))
    session.add(Transition(
        request_id=req.id, action=spec.name, from_state=req.state, to_state=spec.target,
        actor_id=user.id, actor_role=user.role, team_id=team_id or req.team_id, note=note, at=now,
    ))
    outbox.record_request(session, request_id=req.id, action=spec.name, state=spec.target,
                          team_id=team_id or req.team_id, previous_team_id=previous_team,
                          district=req.district, at=now)
    session.flush()
    session.refresh(req)


def relevel(
    session: Session,
    req: ServiceRequest,
    actor: User,
    *,
    level: Level,
    site_id: str,
    note: str,
    messages: Mapping[str, str],
    now: datetime,
    follower_news: str | None = None,
) -> bool:
    """Hand a waiting request to another level and position (escalation), its state unchanged.

    Compare-and-set like :func:`move`: only if the version, state and level are still those
    read. Writes an ``escalate`` step to the history (from and to the same state) and an
    outbox event ``request.escalate`` per audience in ``messages`` (``resident``,
    ``dispatcher``...: the zh-CN text for each), and restarts the level's clock
    (``level_since``). ``follower_news`` (what happened, e.g. ``已转由…优先处理``) also goes
    to the residents whose orders were merged into this one
    (:func:`api.services.outbox.record_for_followers`).

    Returns
    -------
    bool
        Whether this call moved it (``False``: another writer changed it first).
    """
    if not _compare_and_set(session, req, ServiceRequest.area_site_id == req.area_site_id,
                            level=level, area_site_id=site_id, level_since=now, updated_at=now):
        return False
    session.add(Transition(
        request_id=req.id, action="escalate", from_state=req.state, to_state=req.state,
        actor_id=actor.id, actor_role=actor.role, team_id=req.team_id, note=note, at=now,
    ))
    base = {"request_id": req.id, "state": str(req.state), "team_id": req.team_id,
            "district": req.district, "action": "escalate", "category": req.category,
            "level": str(level), "area_site_id": site_id}
    outbox.record_per_audience(session, "request.escalate", base, messages,
                               resident_id=req.resident_id, at=now)
    if follower_news is not None:
        outbox.record_for_followers(session, "request.escalate", base, req.id, follower_news,
                                    at=now)
    session.flush()
    session.refresh(req)
    return True


def merge_ends(session: Session, reqs: Sequence[ServiceRequest]) -> dict[int, RequestState]:
    """Return, for each merged order of ``reqs``, the state of the order it was kept in.

    A kept order merged in turn is followed to the order that was finally kept, so a resident
    whose order was merged follows the one that is served.
    """
    out: dict[int, RequestState] = {}
    for r in reqs:
        target, seen, state = r.merged_into, {r.id}, None
        while target is not None and target not in seen:
            seen.add(target)
            found = session.execute(select(ServiceRequest.state, ServiceRequest.merged_into)
                                    .where(ServiceRequest.id == target)).one_or_none()
            if found is None:
                break
            state = RequestState(found.state)
            target = found.merged_into if state == RequestState.MERGED else None
        if state is not None:
            out[r.id] = state
    return out
