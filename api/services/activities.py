"""Publish activities at practice positions, find them by walking time, and take sign-ups.

Sign-ups never exceed an activity's capacity: each change takes the activity's row lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` queues writers already)
and keeps the confirmed count on the row, where a check constraint (``confirmed <= capacity``)
refuses anything else. Beyond capacity a volunteer joins the waitlist, promoted in order of
arrival when a confirmed volunteer cancels.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.domain import Role, SignupState
from api.services import outbox
from api.services.dispatch_errors import DispatchError, ForbiddenError, NotFoundError
from api.services.leaders import led_teams
from api.services.matching import position_walk
from api.services.volunteers import volunteer_of
from api.storage.models import (
    Activity,
    Attendance,
    Position,
    Signup,
    Team,
    User,
    as_utc,
    utcnow,
)
from geo import DEFAULT_WALK_M_PER_MIN, District
from geo.categories import category

#: The longest an activity may last (a weekend camp, not a season).
MAX_ACTIVITY = timedelta(days=7)
#: How far ahead the list looks when no ``to`` is given.
DEFAULT_HORIZON = timedelta(days=60)


class ActivityClosedError(DispatchError):
    """The activity was cancelled or has ended: no more sign-ups."""


class InvalidActivityError(DispatchError):
    """An activity with a bad window, position or team."""


# ------------------------------------------------------------------------------ publishing


def _position(session: Session, district: District, site_id: str) -> Position:
    row = session.get(Position, site_id)
    if row is None or row.district != district.name or not row.active:
        msg = f"阵地 {site_id!r} 不存在或已关闭"
        raise InvalidActivityError(msg, field="site_id")
    return row


def publish(session: Session, district: District, data: dict[str, Any], *,
            actor: User) -> Activity:
    """Publish an activity at an open position (admin, or a leader for its own team).

    Raises
    ------
    ForbiddenError
        If the actor leads no team (or not the one named) and is no admin.
    InvalidActivityError
        If the window is empty or too long, or the position or team is closed or elsewhere.
    UnknownCategoryError
        If the category is unknown.
    """
    led = led_teams(session, actor)
    team_id = data.get("team_id")
    if actor.role != Role.ADMIN:
        if not led or (team_id is not None and team_id not in led):
            msg = "只有管理员或队长可以为本队发布活动"
            raise ForbiddenError(msg, role=actor.role)
        if team_id is None:
            if len(led) > 1:
                msg = "你带领多支队伍：请用 team_id 指明为哪支队伍发布"
                raise InvalidActivityError(msg, field="team_id")
            team_id = next(iter(led))
    category(data["category"])
    starts, ends = as_utc(data["starts_at"]), as_utc(data["ends_at"])
    if ends <= starts or ends - starts > MAX_ACTIVITY:
        msg = "活动结束时间须晚于开始时间，且活动不超过 7 天"
        raise InvalidActivityError(msg, field="ends_at")
    position = _position(session, district, data["site_id"])
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.district != district.name or not team.active:
            msg = f"队伍 {team_id!r} 不存在或已停用"
            raise InvalidActivityError(msg, field="team_id")
    activity = Activity(
        district=district.name, site_id=position.site_id, team_id=team_id,
        title=data["title"].strip(), category=data["category"],
        description=data.get("description") or "", theme=data.get("theme"),
        starts_at=starts, ends_at=ends, capacity=int(data["capacity"]), confirmed=0,
        cancelled=False, created_by=actor.id,
    )
    session.add(activity)
    session.flush()
    return activity


def find_activity(session: Session, district: District, activity_id: int, *,
                  lock: bool = False) -> Activity:
    """Return an activity of the district, optionally under its row lock.

    Raises
    ------
    NotFoundError
        If there is none with this id in the district.
    """
    stmt = select(Activity).where(Activity.id == activity_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    activity = session.scalar(stmt)
    if activity is None or activity.district != district.name:
        msg = f"没有编号为 {activity_id} 的活动"
        raise NotFoundError(msg, activity_id=activity_id)
    return activity


# ------------------------------------------------------------------------------ reading


def walk_minutes_from(district: District, lon: float, lat: float) -> dict[str, float]:
    """Return walking minutes on the network from a point to every open position.

    Raises
    ------
    OutOfAreaError
        If the point is farther than the access limit from every street.
    """
    walks = position_walk(district)
    walk_m = walks.walk_m(walks.attach(lon, lat))
    return {str(s): float(m) / DEFAULT_WALK_M_PER_MIN
            for s, m in zip(walks.site_ids, walk_m, strict=True) if np.isfinite(m)}


def activity_public(activity: Activity, position: Position,
                    walk_minutes: float | None = None) -> dict[str, Any]:
    """Describe an activity with its position, spaces left and (if asked) the walk to it."""
    return {
        "id": activity.id,
        "title": activity.title,
        "category": activity.category,
        "category_name": category(activity.category).name,
        "description": activity.description,
        "theme": activity.theme,
        "starts_at": as_utc(activity.starts_at),
        "ends_at": as_utc(activity.ends_at),
        "capacity": activity.capacity,
        "confirmed": activity.confirmed,
        "spaces_left": max(activity.capacity - activity.confirmed, 0),
        "cancelled": activity.cancelled,
        "site_id": position.site_id,
        "site_name": position.name,
        "address": position.address,
        "lon": position.lon,
        "lat": position.lat,
        "team_id": activity.team_id,
        "walk_minutes": None if walk_minutes is None else round(walk_minutes, 2),
    }


def list_activities(
    session: Session, district: District, *, start: datetime | None = None,
    end: datetime | None = None, category_code: str | None = None,
    near: tuple[float, float] | None = None, limit: int = 50, offset: int = 0,
) -> dict[str, Any]:
    """List the activities that have not ended within a window, soonest (or nearest) first.

    With ``near`` each carries the walking minutes from that point to its position, on the
    street network, and they sort by it (unreachable last).

    Raises
    ------
    UnknownCategoryError, OutOfAreaError
    """
    start = as_utc(start) if start else utcnow()
    try:
        end = as_utc(end) if end else start + DEFAULT_HORIZON
    except OverflowError:  # a `from` in the year 9999
        end = datetime.max.replace(tzinfo=start.tzinfo)
    if category_code:
        category(category_code)
    stmt = (select(Activity, Position).join(Position, Position.site_id == Activity.site_id)
            .where(Activity.district == district.name, Activity.cancelled.is_(False),
                   Activity.ends_at >= start, Activity.starts_at <= end)
            .order_by(Activity.starts_at, Activity.id))
    if category_code:
        stmt = stmt.where(Activity.category == category_code)
    rows = session.execute(stmt).tuples().all()
    minutes = walk_minutes_from(district, *near) if near else {}
    items = [activity_public(a, p, minutes.get(p.site_id) if near else None) for a, p in rows]
    if near:
        items.sort(key=lambda i: (i["walk_minutes"] is None, i["walk_minutes"] or 0.0))
    return {"total": len(items), "items": items[offset:offset + limit]}


# ------------------------------------------------------------------------------ sign-ups


def _next_seq(session: Session, activity_id: int) -> int:
    last = session.scalar(select(func.max(Signup.seq)).where(Signup.activity_id == activity_id))
    return int(last or 0) + 1


def waitlist_place(session: Session, signup: Signup) -> int | None:
    """Return a waitlisted sign-up's place in the queue (1 = next to be promoted)."""
    if signup.state != SignupState.WAITLISTED:
        return None
    ahead = session.scalar(select(func.count()).select_from(Signup).where(
        Signup.activity_id == signup.activity_id, Signup.state == SignupState.WAITLISTED,
        Signup.seq < signup.seq))
    return int(ahead or 0) + 1


def sign_up(session: Session, district: District, activity_id: int, *,
            user: User) -> tuple[Signup, bool]:
    """Sign the calling volunteer up: confirmed while there is room, else waitlisted.

    Signing up again while signed up changes nothing (``False`` is returned); after a
    cancellation it joins again at the end of the queue.

    Raises
    ------
    ForbiddenError, NotFoundError, ActivityClosedError
    """
    volunteer = volunteer_of(session, user)
    activity = find_activity(session, district, activity_id, lock=True)
    if activity.cancelled or as_utc(activity.ends_at) <= utcnow():
        msg = "活动已取消或已结束，不能再报名"
        raise ActivityClosedError(msg, activity_id=activity_id)
    signup = session.scalar(select(Signup).where(
        Signup.activity_id == activity.id, Signup.volunteer_id == volunteer.id))
    if signup is not None and signup.state != SignupState.CANCELLED:
        return signup, False
    room = activity.confirmed < activity.capacity
    state = SignupState.CONFIRMED if room else SignupState.WAITLISTED
    now, seq = utcnow(), _next_seq(session, activity.id)
    if signup is None:
        signup = Signup(activity_id=activity.id, volunteer_id=volunteer.id, created_at=now)
        session.add(signup)
    signup.state, signup.seq, signup.updated_at = state, seq, now
    if room:
        activity.confirmed += 1
    session.flush()
    return signup, True


def cancel_signup(session: Session, district: District, activity_id: int, *,
                  user: User) -> tuple[Signup, Signup | None]:
    """Cancel the calling volunteer's sign-up; promote the first waitlisted if a place frees.

    Returns the cancelled sign-up and the promoted one (or ``None``).

    Raises
    ------
    ForbiddenError, NotFoundError
        If the caller is not a volunteer, or has no active sign-up for the activity.
    """
    volunteer = volunteer_of(session, user)
    activity = find_activity(session, district, activity_id, lock=True)
    signup = session.scalar(select(Signup).where(
        Signup.activity_id == activity.id, Signup.volunteer_id == volunteer.id))
    if signup is None or signup.state == SignupState.CANCELLED:
        msg = "你没有报名这个活动"
        raise NotFoundError(msg, activity_id=activity_id)
    now = utcnow()
    was_confirmed = signup.state == SignupState.CONFIRMED
    signup.state, signup.updated_at = SignupState.CANCELLED, now
    promoted = None
    if was_confirmed:
        activity.confirmed -= 1
        promoted = session.scalar(
            select(Signup).where(Signup.activity_id == activity.id,
                                 Signup.state == SignupState.WAITLISTED)
            .order_by(Signup.seq).limit(1))
        if promoted is not None and not activity.cancelled:
            promoted.state, promoted.updated_at = SignupState.CONFIRMED, now
            activity.confirmed += 1
            outbox.record(session, "signup.promoted",
                          {"activity_id": activity.id, "volunteer_id": promoted.volunteer_id,
                           "state": str(SignupState.CONFIRMED), "district": district.name},
                          f"活动「{activity.title}」空出名额，你已由候补转为"
                          f"「{SignupState.CONFIRMED.zh}」", at=now, audience="volunteer")
        else:
            promoted = None
    session.flush()
    return signup, promoted


def signup_public(session: Session, signup: Signup, *,
                  place: int | None = None) -> dict[str, Any]:
    """Describe a sign-up: its state (and zh-CN name) and place on the waitlist.

    ``place`` is the waitlist place when the caller knows it already (a whole list in order).
    """
    return {
        "activity_id": signup.activity_id,
        "volunteer_id": signup.volunteer_id,
        "state": signup.state,
        "state_name": SignupState(signup.state).zh,
        "waitlist_place": place if place is not None else waitlist_place(session, signup),
        "created_at": as_utc(signup.created_at),
        "updated_at": as_utc(signup.updated_at),
    }


def activity_signups(session: Session, district: District, activity_id: int, *,
                     viewer: User) -> list[Signup]:
    """List an activity's sign-ups in order of arrival (admin or the activity's team leader).

    Raises
    ------
    NotFoundError, ForbiddenError
    """
    activity = find_activity(session, district, activity_id)
    if viewer.role != Role.ADMIN and activity.team_id not in led_teams(session, viewer):
        msg = "只有管理员或本队队长可以查看报名名单"
        raise ForbiddenError(msg, role=viewer.role)
    return list(session.scalars(
        select(Signup).where(Signup.activity_id == activity.id).order_by(Signup.seq)))


def signups_public(session: Session, signups: list[Signup]) -> list[dict[str, Any]]:
    """Describe an activity's sign-ups in ``seq`` order, counting waitlist places in one pass."""
    places = iter(range(1, len(signups) + 1))
    return [signup_public(session, s, place=next(places)
                          if s.state == SignupState.WAITLISTED else None) for s in signups]


def my_signups(session: Session, district: District, user: User) -> list[dict[str, Any]]:
    """List the calling volunteer's sign-ups, latest activity first, with check-in and -out.

    Cancelled sign-ups are listed too (their state says so); waitlisted ones carry their place.

    Raises
    ------
    ForbiddenError
        If the caller is not a volunteer.
    """
    volunteer = volunteer_of(session, user)
    rows = session.execute(
        select(Signup, Activity, Position, Attendance)
        .join(Activity, Activity.id == Signup.activity_id)
        .join(Position, Position.site_id == Activity.site_id)
        .outerjoin(Attendance, (Attendance.activity_id == Signup.activity_id)
                   & (Attendance.volunteer_id == Signup.volunteer_id))
        .where(Signup.volunteer_id == volunteer.id, Activity.district == district.name)
        .order_by(Activity.starts_at.desc(), Activity.id.desc())).tuples().all()
    out = []
    for signup, activity, position, seen in rows:
        out.append({
            **signup_public(session, signup),
            "title": activity.title,
            "category": activity.category,
            "category_name": category(activity.category).name,
            "starts_at": as_utc(activity.starts_at),
            "ends_at": as_utc(activity.ends_at),
            "site_id": position.site_id,
            "site_name": position.name,
            "activity_cancelled": activity.cancelled,
            "checked_in": seen is not None,
            "checkin_at": None if seen is None else as_utc(seen.checkin_at),
            "checked_out": seen is not None and seen.checkout_at is not None,
            "checkout_at": (None if seen is None or seen.checkout_at is None
                            else as_utc(seen.checkout_at)),
        })
    return out


def activity_titles(session: Session, entries: list[dict[str, Any]]) -> dict[int, str]:
    """Return the titles of the activities ledger lines refer to."""
    ids = {e["activity_id"] for e in entries if e["activity_id"]}
    if not ids:
        return {}
    rows = session.execute(select(Activity.id, Activity.title).where(Activity.id.in_(ids)))
    return dict(rows.tuples().all())
