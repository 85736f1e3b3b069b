"""Run the 点单-派单-接单-评单 lifecycle of service requests: transitions, idempotency, points.

A request moves ``submitted → dispatched → accepted → completed → reviewed``; ``cancel`` ends it
from any open state and ``decline`` sends a dispatched request back to the pool, counting a new
round. Each move is one database transaction that locks the request (``SELECT … FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), checks the state, and updates it only if its version
is still the one read, so of many concurrent moves exactly one wins and the others see the new
state (409). ``(round, rank of state)`` grows with every move: states only move forward.

A POST carrying an ``Idempotency-Key`` stores its first successful answer in the same
transaction as its effect; a retry gets that answer again, a different request under the same key
gets 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.schemas.dispatch import (
    DispatchBody,
    RequestCreate,
    RequestPublic,
    ReviewPublic,
    TeamRef,
    TransitionPublic,
)
from api.services.dispatch_errors import (
    ForbiddenError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NoEligibleTeamError,
    NotFoundError,
    TeamUnavailableError,
)
from api.services.matching import (
    OPEN_STATES,
    REASONS,
    check_category,
    position_walk,
    rank_teams,
)
from api.storage.models import (
    STATES,
    IdempotencyRecord,
    PointsEntry,
    Review,
    ServiceRequest,
    Team,
    Transition,
    User,
    as_utc,
    point,
    utcnow,
)
from geo import District
from geo.categories import category as category_of

STATE_ZH: dict[str, str] = {
    "submitted": "已点单（待派单）",
    "dispatched": "已派单（待接单）",
    "accepted": "已接单（服务中）",
    "completed": "已完成（待评价）",
    "reviewed": "已评价",
    "cancelled": "已取消",
}
ROLE_ZH: dict[str, str] = {
    "resident": "居民", "dispatcher": "调度员", "team": "志愿服务队", "admin": "管理员",
}
RANK: dict[str, int] = {s: i for i, s in enumerate(STATES)}
#: Volunteer points for each hour served and for each star of a review.
POINTS_PER_HOUR = 10
POINTS_PER_STAR = 2
#: Total hours for star levels 1-5 (星级志愿服务: 100/300/600/1000/1500 hours).
STAR_HOURS: tuple[int, ...] = (100, 300, 600, 1000, 1500)
STAR_ZH: tuple[str, ...] = ("未评星", "一星级", "二星级", "三星级", "四星级", "五星级")


@dataclass(frozen=True)
class Action:
    """A lifecycle action: the states it starts from, the state it leads to, who may do it."""

    name: str
    zh: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[str]


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("dispatch", "派单", ("submitted",), "dispatched",
               frozenset({"dispatcher", "admin"})),
        Action("accept", "接单", ("submitted", "dispatched"), "accepted", frozenset({"team"})),
        Action("decline", "拒单", ("dispatched",), "submitted", frozenset({"team"})),
        Action("complete", "完成服务", ("accepted",), "completed", frozenset({"team"})),
        Action("review", "评单", ("completed",), "reviewed", frozenset({"resident"})),
        Action("cancel", "取消", ("submitted", "dispatched", "accepted"), "cancelled",
               frozenset({"resident", "dispatcher", "admin"})),
    )
}


def next_actions(state: str, role: str | None = None) -> list[str]:
    """List the actions the state allows: to ``role``, or to some role when it is ``None``."""
    return [a.name for a in ACTIONS.values()
            if state in a.sources and (role is None or role in a.roles or role == "admin")]


def progress(state: str, round_: int) -> tuple[int, int]:
    """Return a key that strictly grows with every allowed move."""
    return (round_, RANK[state])


def star_level(hours: float) -> int:
    """Return the star level 0-5 for total hours served."""
    return sum(hours >= h for h in STAR_HOURS)


@dataclass(frozen=True)
class Outcome:
    """An answer to a POST: status, JSON body, Location, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    location: str | None = None
    replayed: bool = False


# ----------------------------------------------------------------------------- presentation


def mask_contact(contact: str) -> str:
    """Hide the middle of a phone number: ``13812341234`` → ``138****1234``."""
    if len(contact) >= 8:
        return contact[:3] + "****" + contact[-4:]
    if len(contact) > 2:
        return contact[0] + "*" * (len(contact) - 2) + contact[-1]
    return "*" * len(contact)


def sees_contact(user: User, req: ServiceRequest) -> bool:
    """Only dispatchers and the team the request is assigned to see the full contact."""
    if user.role == "dispatcher":
        return True
    return user.role == "team" and req.team_id is not None and user.team_id == req.team_id


def _present_many(
    session: Session, reqs: Sequence[ServiceRequest], user: User
) -> list[dict[str, Any]]:
    if not reqs:
        return []
    ids = [r.id for r in reqs]
    history: dict[int, list[Transition]] = {i: [] for i in ids}
    for t in session.scalars(
        select(Transition).where(Transition.request_id.in_(ids)).order_by(Transition.id)
    ):
        history[t.request_id].append(t)
    reviews = {
        r.request_id: r for r in session.scalars(select(Review).where(Review.request_id.in_(ids)))
    }
    team_ids = {r.team_id for r in reqs if r.team_id}
    teams = {
        t.team_id: t.name
        for t in session.execute(select(Team.team_id, Team.name).where(Team.team_id.in_(team_ids)))
    } if team_ids else {}
    out = []
    for r in reqs:
        show = sees_contact(user, r)
        rv = reviews.get(r.id)
        pub = RequestPublic(
            id=r.id,
            district=r.district,
            state=r.state,  # type: ignore[arg-type]
            state_zh=STATE_ZH[r.state],
            category=r.category,
            category_zh=category_of(r.category).name,
            description=r.description,
            contact=r.contact if show else mask_contact(r.contact),
            contact_masked=not show,
            lon=r.lon,
            lat=r.lat,
            resident_id=r.resident_id,
            team=TeamRef(team_id=r.team_id, name=teams.get(r.team_id, "")) if r.team_id else None,
            round=r.round,
            hours=r.hours,
            next_actions=next_actions(r.state, user.role),
            created_at=as_utc(r.created_at),
            updated_at=as_utc(r.updated_at),
            review=ReviewPublic(stars=rv.stars, comment=rv.comment, at=as_utc(rv.created_at))
            if rv else None,
            history=[
                TransitionPublic(
                    action=t.action, from_state=t.from_state,  # type: ignore[arg-type]
                    to_state=t.to_state, actor_id=t.actor_id,  # type: ignore[arg-type]
                    actor_role=t.actor_role, team_id=t.team_id,  # type: ignore[arg-type]
                    note=t.note, at=as_utc(t.at),
                )
                for t in history[r.id]
            ],
        )
        out.append(pub.model_dump(mode="json"))
    return out


def present(session: Session, req: ServiceRequest, user: User) -> dict[str, Any]:
    """Return a request as the user may see it (JSON-ready)."""
    return _present_many(session, [req], user)[0]


# ---------------------------------------------------------------------------------- reading


def _visible(
    session: Session, user: User, request_id: int, district: District, *, lock: bool = False
) -> ServiceRequest:
    stmt = select(ServiceRequest).where(ServiceRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    req = session.scalar(stmt)
    if (
        req is None
        or req.district != district.name
        or (user.role == "resident" and req.resident_id != user.id)
    ):
        msg = f"没有编号为 {request_id} 的服务请求"
        raise NotFoundError(msg, request_id=request_id)
    return req


def get_request(
    session: Session, district: District, user: User, request_id: int
) -> dict[str, Any]:
    """Return one request with its history, as the user may see it.

    A team reads what :func:`list_requests` shows it: requests assigned to it and the open pool
    of its categories; any other id is "not found", so ids cannot be walked to read residents'
    descriptions and positions.
    """
    req = _visible(session, user, request_id, district)
    if user.role == "team" and req.team_id != user.team_id:
        team = session.get(Team, user.team_id)
        codes = team.categories.split(",") if team else []
        if not (req.state == "submitted" and req.category in codes):
            msg = f"没有编号为 {request_id} 的服务请求"
            raise NotFoundError(msg, request_id=request_id)
    return present(session, req, user)


def list_requests(
    session: Session,
    district: District,
    user: User,
    *,
    state: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """List the requests the user may see, newest first.

    Residents see their own; teams those assigned to them and the open pool of their
    categories; dispatchers and admins all. ``bbox`` (lon/lat) filters on the stored geometry.
    """
    where: list[Any] = [ServiceRequest.district == district.name]
    if user.role == "resident":
        where.append(ServiceRequest.resident_id == user.id)
    elif user.role == "team":
        team = session.get(Team, user.team_id)
        codes = team.categories.split(",") if team else []
        where.append(or_(
            ServiceRequest.team_id == user.team_id,
            (ServiceRequest.state == "submitted") & ServiceRequest.category.in_(codes),
        ))
    if state is not None:
        where.append(ServiceRequest.state == state)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        box = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
        where.append(func.ST_Intersects(ServiceRequest.geom, func.ST_GeomFromText(box, 4326)))
    count = session.scalar(select(func.count()).select_from(ServiceRequest).where(*where)) or 0
    reqs = session.scalars(
        select(ServiceRequest).where(*where).order_by(ServiceRequest.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return {"items": _present_many(session, reqs, user), "count": count, "limit": limit,
            "offset": offset}


# ------------------------------------------------------------------------------ idempotency


def _fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    payload = {"method": method, "path": path,
               "body": body.model_dump(mode="json") if body is not None else None}
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Outcome:
    if record.fingerprint != fingerprint:
        msg = "该 Idempotency-Key 已用于另一个不同的请求；请为新请求使用新的键"
        raise IdempotencyConflictError(msg, idempotency_key=record.key)
    return Outcome(record.status, json.loads(record.body), record.location, replayed=True)


def _idempotent(
    session: Session, user: User, key: str | None, fingerprint: str, run: Callable[[], Outcome]
) -> Outcome:
    """Run a write once per key: the first success is stored with it and replayed after."""
    if key is not None:
        prior = session.get(IdempotencyRecord, (user.id, key))
        if prior is not None:
            return _replay(prior, fingerprint)
    outcome = run()
    if key is not None:
        session.add(IdempotencyRecord(
            user_id=user.id, key=key, fingerprint=fingerprint, status=outcome.status,
            body=json.dumps(outcome.body, ensure_ascii=False), location=outcome.location,
        ))
    try:
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same key committed first: its effect stands, ours is
        # rolled back, and its answer is the answer.
        session.rollback()
        prior = session.get(IdempotencyRecord, (user.id, key)) if key is not None else None
        if prior is None:
            raise
        return _replay(prior, fingerprint)
    return outcome


# ---------------------------------------------------------------------------------- writing


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
    fingerprint = _fingerprint("POST", f"/requests?district={district.name}", body)

    def run() -> Outcome:
        if user.role != "resident":
            msg = f"只有居民可以点单（当前角色：{ROLE_ZH[user.role]}）"
            raise ForbiddenError(msg, role=user.role)
        check_category(body.category)
        position_walk(district).attach(body.lon, body.lat)  # OutOfAreaError when off the map
        now = utcnow()
        req = ServiceRequest(
            district=district.name, resident_id=user.id, category=body.category,
            description=body.description.strip(), contact=body.contact.strip(), lon=body.lon,
            lat=body.lat, geom=point(body.lon, body.lat), state="submitted", round=0,
            version=1, created_at=now, updated_at=now,
        )
        session.add(req)
        session.flush()
        session.add(Transition(
            request_id=req.id, action="create", from_state=None, to_state="submitted",
            actor_id=user.id, actor_role=user.role, note="", at=now,
        ))
        session.flush()
        return Outcome(201, present(session, req, user), f"/requests/{req.id}")

    return _idempotent(session, user, idempotency_key, fingerprint, run)


def _declined_by(session: Session, request_id: int) -> frozenset[str]:
    rows = session.scalars(
        select(Transition.team_id).where(
            Transition.request_id == request_id, Transition.action == "decline"
        )
    )
    return frozenset(t for t in rows if t)


def _lock_team(session: Session, team_id: str, district: District) -> Team:
    team = session.scalar(
        select(Team).where(Team.team_id == team_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if team is None or team.district != district.name:
        msg = f"{district.name}没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    return team


def _open_count(session: Session, team_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(ServiceRequest).where(
            ServiceRequest.team_id == team_id, ServiceRequest.state.in_(OPEN_STATES)
        )
    ) or 0


def _team_reasons(
    session: Session, team: Team, category: str, declined: frozenset[str]
) -> list[str]:
    reasons = []
    if not team.serves(category):
        reasons.append("category")
    if not team.active:
        reasons.append("inactive")
    if _open_count(session, team.team_id) >= team.capacity:
        reasons.append("capacity")
    if team.team_id in declined:
        reasons.append("declined")
    return reasons


def _unavailable(team: Team, reasons: list[str]) -> TeamUnavailableError:
    why = "、".join(REASONS[r] for r in reasons)
    msg = f"队伍 {team.team_id} 现在不能接此单：{why}"
    return TeamUnavailableError(msg, team_id=team.team_id, reasons=reasons)


def _pick_team(
    session: Session, district: District, req: ServiceRequest, body: DispatchBody
) -> tuple[Team, str]:
    declined = _declined_by(session, req.id)
    if body.team_id is not None:
        team = _lock_team(session, body.team_id, district)
        reasons = _team_reasons(session, team, req.category, declined)
        if reasons:
            raise _unavailable(team, reasons)
        return team, "指定派单"
    ranking = rank_teams(
        session, district, lon=req.lon, lat=req.lat, category=req.category, limit=None,
        eligible_only=True, exclude=declined,
    )
    for cand in ranking.candidates:
        # Each look runs in a savepoint: a team found full is unlocked again (PostgreSQL drops
        # row locks with the savepoint), so two dispatches never hold teams the other waits for.
        look = session.begin_nested()
        team = _lock_team(session, cand.team_id, district)
        if not _team_reasons(session, team, req.category, declined):
            look.commit()
            return team, f"自动派单：最近的可接单队伍，步行约 {cand.walk_minutes:.1f} 分钟"
        look.rollback()
    msg = f"{district.name}没有能接此单的队伍（服务类别、是否在岗、剩余容量都不符）"
    raise NoEligibleTeamError(msg, considered=ranking.considered)


def _require_assigned(user: User, req: ServiceRequest, spec: Action) -> None:
    if req.team_id != user.team_id:
        msg = f"此单未派给你的队伍，不能{spec.zh}"
        raise ForbiddenError(msg, action=spec.name, team_id=user.team_id)


def _move(
    session: Session,
    req: ServiceRequest,
    user: User,
    spec: Action,
    *,
    team_id: str | None,
    note: str = "",
    **values: Any,
) -> None:
    """Compare-and-set the state; exactly one of concurrent movers gets through."""
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
        raise _invalid(spec, str(current))
    session.add(Transition(
        request_id=req.id, action=spec.name, from_state=req.state, to_state=spec.target,
        actor_id=user.id, actor_role=user.role, team_id=team_id or req.team_id, note=note, at=now,
    ))
    session.flush()
    session.refresh(req)


def _invalid(spec: Action, state: str) -> InvalidTransitionError:
    msg = f"当前状态为「{STATE_ZH[state]}」，不能{spec.zh}"
    return InvalidTransitionError(msg, state=state, action=spec.name,
                                  allowed_actions=next_actions(state))


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
    fingerprint = _fingerprint("POST", f"/requests/{request_id}/{action}", body)

    def run() -> Outcome:
        req = _visible(session, user, request_id, district, lock=True)
        if user.role not in spec.roles:
            msg = f"{ROLE_ZH[user.role]}不能{spec.zh}"
            raise ForbiddenError(msg, action=spec.name, role=user.role)
        if req.state not in spec.sources:
            raise _invalid(spec, req.state)
        getattr(_Handlers, spec.name)(session, district, user, req, spec, body)
        return Outcome(200, present(session, req, user))

    return _idempotent(session, user, idempotency_key, fingerprint, run)


class _Handlers:
    """One function per action: checks beyond role and state, then the move."""

    @staticmethod
    def dispatch(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        team, note = _pick_team(session, district, req, body or DispatchBody())
        _move(session, req, user, spec, team_id=team.team_id, note=note)

    @staticmethod
    def accept(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        assert user.team_id is not None
        team = _lock_team(session, user.team_id, district)
        if req.state == "dispatched":
            _require_assigned(user, req, spec)
            note = "接受派单"
        else:  # grabbing an open request from the pool
            reasons = _team_reasons(session, team, req.category, _declined_by(session, req.id))
            if reasons:
                raise _unavailable(team, reasons)
            note = "抢单：从待派单池中接单"
        _move(session, req, user, spec, team_id=team.team_id, note=note)

    @staticmethod
    def decline(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(user, req, spec)
        _move(session, req, user, spec, team_id=None, note=getattr(body, "reason", ""))

    @staticmethod
    def complete(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _require_assigned(user, req, spec)
        hours = float(body.hours)
        _move(session, req, user, spec, team_id=req.team_id, note=body.note, hours=hours)
        session.add(PointsEntry(
            team_id=req.team_id, request_id=req.id, reason="complete", hours=hours,
            points=round(hours * POINTS_PER_HOUR),
        ))

    @staticmethod
    def review(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        assert req.team_id is not None
        _move(session, req, user, spec, team_id=req.team_id, note=f"{body.stars} 星")
        session.add(Review(request_id=req.id, team_id=req.team_id, resident_id=user.id,
                           stars=body.stars, comment=body.comment))
        session.add(PointsEntry(
            team_id=req.team_id, request_id=req.id, reason="review", hours=0.0,
            points=body.stars * POINTS_PER_STAR,
        ))
        session.flush()

    @staticmethod
    def cancel(
        session: Session, district: District, user: User, req: ServiceRequest, spec: Action,
        body: Any,
    ) -> None:
        _move(session, req, user, spec, team_id=req.team_id, note=getattr(body, "reason", ""))


# ------------------------------------------------------------------------------ leaderboard


def leaderboard(session: Session, district: District, *, limit: int = 20) -> dict[str, Any]:
    """Teams by volunteer points (10 per hour served, 2 per review star), with star levels."""
    pts = (
        select(
            PointsEntry.team_id.label("team_id"),
            func.sum(PointsEntry.points).label("points"),
            func.sum(PointsEntry.hours).label("hours"),
            func.sum(case((PointsEntry.reason == "complete", 1), else_=0)).label("completed"),
        )
        .group_by(PointsEntry.team_id)
        .subquery()
    )
    rev = (
        select(
            Review.team_id.label("team_id"),
            func.count().label("reviews"),
            func.avg(Review.stars).label("rating"),
        )
        .group_by(Review.team_id)
        .subquery()
    )
    points = func.coalesce(pts.c.points, 0)
    hours = func.coalesce(pts.c.hours, 0.0)
    rows = session.execute(
        select(Team.team_id, Team.name, Team.categories, Team.site_id, points, hours,
               func.coalesce(pts.c.completed, 0), func.coalesce(rev.c.reviews, 0), rev.c.rating)
        .outerjoin(pts, pts.c.team_id == Team.team_id)
        .outerjoin(rev, rev.c.team_id == Team.team_id)
        .where(Team.district == district.name)
        .order_by(points.desc(), hours.desc(), Team.team_id)
        .limit(limit)
    ).all()
    teams = []
    for i, (tid, name, cats, site, p, h, done, n_rev, rating) in enumerate(rows, start=1):
        level = star_level(float(h))
        teams.append({
            "rank": i, "team_id": tid, "name": name, "categories": cats.split(","),
            "site_id": site, "points": int(p), "hours": round(float(h), 2),
            "completed": int(done), "reviews": int(n_rev),
            "rating": None if rating is None else round(float(rating), 2),
            "star_level": level, "star_level_zh": STAR_ZH[level],
        })
    return {
        "district": district.name,
        "teams": teams,
        "rules": (
            f"每服务 1 小时 {POINTS_PER_HOUR} 分，每获评 1 星 {POINTS_PER_STAR} 分；"
            "星级按累计服务时长：100/300/600/1000/1500 小时为一至五星"
        ),
    }
