"""Take the 点单-派单-接单-评单 actions on service requests, one transaction each.

:func:`create_request` (点单) and :func:`act` (派单, 接单, 拒单, 完成, 评单, 取消) are the writes of
the dispatch API. Each locks the request (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), checks the role and the state against
:data:`api.services.state_machine.ACTIONS`, does the action's own checks and effects, moves the
state (:func:`api.services.state_machine.move`) and commits once per ``Idempotency-Key``
(:mod:`api.services.idempotency`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.domain import RequestState, Role
from api.schemas.dispatch import DispatchBody, RequestCreate
from api.services import outbox
from api.services.dispatch_errors import ForbiddenError
from api.services.idempotency import Outcome, fingerprint, run_once
from api.services.leaderboard import hours_points, review_points
from api.services.matching import position_walk
from api.services.requests_query import visible
from api.services.requests_view import present
from api.services.state_machine import ACTIONS, Action, invalid, move
from api.services.team_pick import declined_by, lock_team, pick_team, require_eligible
from api.storage.models import PointsEntry, Review, ServiceRequest, Transition, User, point, utcnow
from geo import District
from geo.categories import category as check_category


def create_request(
    session: Session,
    district: District,
    user: User,
    body: RequestCreate,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """点单: a resident asks for a service at a position on the district's streets.

    Raises
    ------
    ForbiddenError
        If the user is not a resident.
    UnknownCategoryError, OutOfAreaError
        If the category is unknown or the position is off the walking network.
    """
    key = fingerprint("POST", f"/requests?district={district.name}", body)

    def run() -> Outcome:
        if user.role != Role.RESIDENT:
            msg = f"只有居民可以点单（当前角色：{user.role.zh}）"
            raise ForbiddenError(msg, role=user.role)
        check_category(body.category)
        position_walk(district).attach(body.lon, body.lat)  # OutOfAreaError when off the map
        now = utcnow()
        req = ServiceRequest(
            district=district.name, resident_id=user.id, category=body.category,
            description=body.description.strip(), contact=body.contact.strip(), lon=body.lon,
            lat=body.lat, geom=point(body.lon, body.lat), state=RequestState.SUBMITTED, round=0,
            version=1, created_at=now, updated_at=now,
        )
        session.add(req)
        session.flush()
        session.add(Transition(
            request_id=req.id, action="create", from_state=None, to_state=RequestState.SUBMITTED,
            actor_id=user.id, actor_role=user.role, note="", at=now,
        ))
        outbox.record_request(session, request_id=req.id, action="create",
                              state=RequestState.SUBMITTED, team_id=None,
                              district=district.name, at=now)
        session.flush()
        return Outcome(201, present(session, req, user), f"/requests/{req.id}")

    return run_once(session, user, idempotency_key, key, run)


def act(
    session: Session,
    district: District,
    user: User,
    request_id: int,
    action: str,
    body: BaseModel | None = None,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Apply a lifecycle action to a request.

    Raises
    ------
    NotFoundError
        No such request (or not the resident's own).
    ForbiddenError
        The role may not take this action, or the request is another team's.
    InvalidTransitionError
        The action does not fit the current state (409, the state included).
    TeamUnavailableError, NoEligibleTeamError
        No team can take the request.
    """
    spec = ACTIONS[action]
    key = fingerprint("POST", f"/requests/{request_id}/{action}", body)

    def run() -> Outcome:
        req = visible(session, user, request_id, district, lock=True)
        if user.role not in spec.roles:
            msg = f"{user.role.zh}不能{spec.zh}"
            raise ForbiddenError(msg, action=spec.name, role=user.role)
        if req.state not in spec.sources:
            raise invalid(spec, req.state)
        getattr(_Handlers, spec.name)(session, district, user, req, spec, body)
        return Outcome(200, present(session, req, user))

    return run_once(session, user, idempotency_key, key, run)


def _require_assigned(user: User, req: ServiceRequest, spec: Action) -> None:
    if req.team_id != user.team_id:
        msg = f"此单未派给你的队伍，不能{spec.zh}"
        raise ForbiddenError(msg, action=spec.name, team_id=user.team_id)


class _Handlers:
    """One function per action: checks beyond role and state, then the move."""

    @staticmethod
    def dispatch(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        team, note = pick_team(session, district, req, body or DispatchBody())
        move(session, req, user, spec, team_id=team.team_id, note=note)

    @staticmethod
    def accept(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        assert user.team_id is not None
        team = lock_team(session, user.team_id, district)
        if req.state == RequestState.DISPATCHED:
            _require_assigned(user, req, spec)
            note = "接受派单"
        else:  # grabbing an open request from the pool
            require_eligible(session, team, req.category, declined_by(session, req.id))
            note = "抢单：从待派单池中接单"
        move(session, req, user, spec, team_id=team.team_id, note=note)

    @staticmethod
    def decline(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(user, req, spec)
        move(session, req, user, spec, team_id=None, note=getattr(body, "reason", ""))

    @staticmethod
    def complete(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(user, req, spec)
        hours = float(body.hours)
        move(session, req, user, spec, team_id=req.team_id, note=body.note, hours=hours)
        session.add(PointsEntry(
            team_id=req.team_id, request_id=req.id, reason="complete", hours=hours,
            points=hours_points(hours),
        ))

    @staticmethod
    def review(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        assert req.team_id is not None
        move(session, req, user, spec, team_id=req.team_id, note=f"{body.stars} 星")
        session.add(Review(request_id=req.id, team_id=req.team_id, resident_id=user.id,
                           stars=body.stars, comment=body.comment))
        session.add(PointsEntry(
            team_id=req.team_id, request_id=req.id, reason="review", hours=0.0,
            points=review_points(body.stars),
        ))
        session.flush()

    @staticmethod
    def cancel(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        move(session, req, user, spec, team_id=req.team_id, note=getattr(body, "reason", ""))
