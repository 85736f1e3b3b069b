"""The lifecycle of a service request: which action leads where, who may take it, and the move.

A request moves ``submitted → dispatched → accepted → completed → reviewed``; ``cancel`` ends it
from any open state and ``decline`` sends a dispatched request back to the pool, counting a new
round. :func:`move` updates the request only if its version is still the one read, so of many
concurrent moves exactly one wins and the others see the new state (409). ``(round, rank of
state)`` grows with every move: states only move forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.domain import RequestState, Role
from api.services import outbox
from api.services.dispatch_errors import InvalidTransitionError
from api.storage.models import ServiceRequest, Transition, User, utcnow


@dataclass(frozen=True)
class Action:
    """A lifecycle action: the states it starts from, the state it leads to, who may do it."""

    name: str
    zh: str
    sources: tuple[RequestState, ...]
    target: RequestState
    roles: frozenset[Role]


_CANCELLABLE = (RequestState.SUBMITTED, RequestState.DISPATCHED, RequestState.ACCEPTED)
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("dispatch", "派单", (RequestState.SUBMITTED,), RequestState.DISPATCHED,
               frozenset({Role.DISPATCHER, Role.ADMIN})),
        Action("accept", "接单", (RequestState.SUBMITTED, RequestState.DISPATCHED),
               RequestState.ACCEPTED, frozenset({Role.TEAM})),
        Action("decline", "拒单", (RequestState.DISPATCHED,), RequestState.SUBMITTED,
               frozenset({Role.TEAM})),
        Action("complete", "完成服务", (RequestState.ACCEPTED,), RequestState.COMPLETED,
               frozenset({Role.TEAM})),
        Action("review", "评单", (RequestState.COMPLETED,), RequestState.REVIEWED,
               frozenset({Role.RESIDENT})),
        Action("cancel", "取消", _CANCELLABLE, RequestState.CANCELLED,
               frozenset({Role.RESIDENT, Role.DISPATCHER, Role.ADMIN})),
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
    new_round = req.round + (1 if spec.name == "decline" else 0)
    result = session.execute(
        update(ServiceRequest)
        .where(
            ServiceRequest.id == req.id,
            ServiceRequest.version == req.version,
            ServiceRequest.state == req.state,
        )
        .values(state=spec.target, version=req.version + 1, round=new_round, updated_at=now,
                team_id=team_id, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(select(ServiceRequest.state).where(ServiceRequest.id == req.id))
        raise invalid(spec, str(current))
    session.add(Transition(
        request_id=req.id, action=spec.name, from_state=req.state, to_state=spec.target,
        actor_id=user.id, actor_role=user.role, team_id=team_id or req.team_id, note=note, at=now,
    ))
    outbox.record_request(session, request_id=req.id, action=spec.name, state=spec.target,
                          team_id=team_id or req.team_id, district=req.district, at=now)
    session.flush()
    session.refresh(req)
