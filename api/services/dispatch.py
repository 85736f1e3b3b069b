"""Take the 点单-派单-接单-评单 actions on service requests, one transaction each.

:func:`create_request` (点单) and :func:`act` (派单, 接单, 拒单, 完成, 评单, 取消, and at the
workbench 驳回, 合并, 改派) are the writes of the dispatch API. A new order is placed with the
站 nearest it by walking (:func:`api.services.escalation.assign_area`), whose SLA timer starts
then. An order the caller may not see (:func:`api.services.requests_query.may_see`) is "not
found" to every action as to reading it. A 所/站 account allocates only the orders of its area
(and merges only into them); a volunteer who leads a team acts for it as its team account does
on the orders dispatched to that team (taking an order from the open pool, 抢单, stays with team
accounts), and orders, cancels and reviews their own orders as a resident does.

Each locks the request (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
checks the role and the state against
:data:`api.services.state_machine.ACTIONS`, does the action's own checks and effects, moves the
state (:func:`api.services.state_machine.move`) and commits once per ``Idempotency-Key``
(:mod:`api.services.idempotency`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import OPEN_STATES, RequestState, Role
from api.schemas.dispatch import DispatchBody, MergeBody, RejectBody, RequestCreate
from api.services import outbox
from api.services.dispatch_errors import (
    DispatchError,
    ForbiddenError,
    NoEligibleTeamError,
    TeamUnavailableError,
)
from api.services.eligibility import team_reasons
from api.services.escalation import assign_area
from api.services.idempotency import Outcome, fingerprint, run_once
from api.services.leaderboard import hours_points, review_points
from api.services.leaders import led_teams
from api.services.matching import position_walk, rank_teams
from api.services.requests_query import may_see, visible
from api.services.requests_view import present
from api.services.state_machine import ACTIONS, ORDERERS, Action, invalid, move
from api.services.team_pick import declined_by, lock_team, pick_team, require_eligible
from api.storage.models import (
    PointsEntry,
    Review,
    ServiceRequest,
    Team,
    Transition,
    User,
    point,
    utcnow,
)
from geo import District
from geo.categories import category as check_category


class MergeTargetError(DispatchError):
    """The order to merge into is not an open order of the same category (or is the same one)."""


def create_request(
    session: Session,
    district: District,
    user: User,
    body: RequestCreate,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """点单: a resident (or a volunteer, a resident too) asks for a service on the streets.

    Raises
    ------
    ForbiddenError
        If the user is neither a resident nor a volunteer.
    UnknownCategoryError, OutOfAreaError
        If the category is unknown or the position is off the walking network.
    """
    key = fingerprint("POST", f"/requests?district={district.name}", body)

    def run() -> Outcome:
        if user.role not in ORDERERS:
            msg = f"只有居民和志愿者可以点单（当前角色：{user.role.zh}）"
            raise ForbiddenError(msg, role=user.role)
        check_category(body.category)
        at = position_walk(district).attach(body.lon, body.lat)  # OutOfAreaError: off the map
        level, area = assign_area(district, at)
        now = utcnow()
        req = ServiceRequest(
            district=district.name, resident_id=user.id, category=body.category,
            description=body.description.strip(), contact=body.contact.strip(), lon=body.lon,
            lat=body.lat, geom=point(body.lon, body.lat), state=RequestState.SUBMITTED, round=0,
            version=1, created_at=now, updated_at=now, level=level, area_site_id=area,
            level_since=now,
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
        No such request, or one the user may not see (as reading it: another resident's,
        another team's, outside a 所/站 account's area...).
    ForbiddenError
        The user sees the request but the role may not take this action, or it is not
        theirs to take (not the leader of the team it is dispatched to, not their own order).
    InvalidTransitionError
        The action does not fit the current state (409, the state included).
    TeamUnavailableError, NoEligibleTeamError
        No team can take the request.
    MergeTargetError
        A merge into an order that is not an open one of the same category.
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


def _acting_team(session: Session, user: User, req: ServiceRequest, spec: Action) -> str:
    """Return the team a team account or a leading volunteer acts for on this request.

    A leader acts on orders dispatched to a team they lead; the open pool (抢单) is for team
    accounts only.

    Raises
    ------
    ForbiddenError
        A volunteer who leads no team the request is assigned to (it is theirs to see as the
        resident who ordered it, or it sits in the open pool).
    """
    if user.role == Role.TEAM:
        assert user.team_id is not None
        return user.team_id
    if req.team_id is not None and req.team_id in led_teams(session, user):
        return req.team_id
    msg = (f"只有被派单队伍的队长可以{spec.zh}；待派单池中的服务单由队伍账号抢单，"
           f"队长只处理派给本队的服务单")
    raise ForbiddenError(msg, action=spec.name, role=user.role)


def _require_own(user: User, req: ServiceRequest, spec: Action) -> None:
    """Residents and volunteers review and cancel only the orders they made themselves."""
    if user.role in ORDERERS and req.resident_id != user.id:
        msg = f"只有点单的居民本人可以{spec.zh}"
        raise ForbiddenError(msg, action=spec.name, role=user.role)


def _require_assigned(team_id: str, req: ServiceRequest, spec: Action) -> None:
    if req.team_id != team_id:
        msg = f"此单未派给你的队伍，不能{spec.zh}"
        raise ForbiddenError(msg, action=spec.name, team_id=team_id)


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
        team = lock_team(session, _acting_team(session, user, req, spec), district)
        if req.state == RequestState.DISPATCHED:
            _require_assigned(team.team_id, req, spec)
            note = "接受派单" if user.role == Role.TEAM else f"接受派单（队长 {user.name}）"
        else:  # grabbing an open request from the pool
            require_eligible(session, team, req.category, declined_by(session, req.id))
            note = "抢单：从待派单池中接单"
        move(session, req, user, spec, team_id=team.team_id, note=note)

    @staticmethod
    def decline(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(_acting_team(session, user, req, spec), req, spec)
        move(session, req, user, spec, team_id=None, note=getattr(body, "reason", ""))

    @staticmethod
    def complete(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(_acting_team(session, user, req, spec), req, spec)
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
        _require_own(user, req, spec)
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
        _require_own(user, req, spec)
        move(session, req, user, spec, team_id=req.team_id, note=getattr(body, "reason", ""))

    @staticmethod
    def reject(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        reason = RejectBody.model_validate(body).reason.strip()
        move(session, req, user, spec, team_id=req.team_id, note=reason, reject_reason=reason)

    @staticmethod
    def merge(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        into_id = MergeBody.model_validate(body).into
        into = session.scalar(
            select(ServiceRequest).where(ServiceRequest.id == into_id).with_for_update()
            .execution_options(populate_existing=True)
        )
        why = None
        # One the user may not see is "no such order" (a 所/站 account: outside its area).
        if into is None or into.district != district.name or not may_see(session, user, into):
            why = f"没有编号为 {into_id} 的服务单"
        elif into.id == req.id:
            why = "不能把服务单合并到它自己"
        elif into.category != req.category:
            why = f"服务类别不同，不能合并到 #{into.id}"
        elif into.state not in OPEN_STATES:
            why = f"#{into.id} 当前状态为「{into.state.zh}」，只能合并到未结束的服务单"
        if why is not None:
            raise MergeTargetError(why, into=into_id)
        assert into is not None
        move(session, req, user, spec, team_id=req.team_id, note=f"与 #{into.id} 重复，已合并",
             merged_into=into.id)

    @staticmethod
    def redispatch(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        team, note = _another_team(session, district, req, DispatchBody.model_validate(
            body or {}))
        move(session, req, user, spec, team_id=team.team_id, note=note)


def _another_team(
    session: Session, district: District, req: ServiceRequest, body: DispatchBody
) -> tuple[Team, str]:
    """Pick a team other than the one holding the request: the named one, or the next nearest.

    Raises
    ------
    TeamUnavailableError
        The named team is the one holding it, or cannot take it.
    NoEligibleTeamError
        No other team can take it.
    """
    current = req.team_id
    if body.team_id is not None:
        if body.team_id == current:
            msg = f"此单已在队伍 {current}，改派须换一支队伍"
            raise TeamUnavailableError(msg, team_id=current, reasons=["current"])
        team, _ = pick_team(session, district, req, body)
        return team, "改派：指定队伍"
    exclude = declined_by(session, req.id) | ({current} if current else set())
    ranking = rank_teams(session, district, lon=req.lon, lat=req.lat, category=req.category,
                         limit=None, eligible_only=True, exclude=frozenset(exclude))
    for cand in ranking.candidates:
        look = session.begin_nested()  # as team_pick.pick_team: a full team is unlocked again
        team = lock_team(session, cand.team_id, district)
        if not team_reasons(session, team, req.category, frozenset(exclude)):
            look.commit()
            return team, f"改派：次近的可接单队伍，步行约 {cand.walk_minutes:.1f} 分钟"
        look.rollback()
    msg = f"{district.name}没有别的队伍能接此单（服务类别、是否在岗、剩余容量都不符）"
    raise NoEligibleTeamError(msg, considered=ranking.considered)
