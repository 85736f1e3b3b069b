"""Keep volunteers' service hours and points in append-only ledgers; stars and rankings from them.

Nothing is ever edited: a check-out credits hours (approved at once); a leader's correction or
back-fill (补录) is a new line, ``pending`` until an admin approves or rejects it. Every approved
hours line earns ``points_per_hour`` points (a setting) in the points ledger, and the store's
redemptions are negative lines there: a balance is always the ledger's sum. Star levels follow
cumulative approved hours with the thresholds of the 中国注册志愿者管理办法 (Communist Youth
League Central Committee, 2006): 100/300/600/1000/1500 hours for one to five stars, the same
as the teams' leaderboard (:data:`api.services.leaderboard.STAR_HOURS`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.domain import EntryState, HoursKind, Role
from api.services.dispatch_errors import DispatchError, ForbiddenError, NotFoundError
from api.services.leaderboard import STAR_HOURS, STAR_ZH, star_level
from api.services.leaders import led_teams
from api.services.volunteers import find_volunteer, teams_of
from api.settings import get_settings
from api.storage.models import (
    HoursEntry,
    PointsLine,
    Team,
    TeamMember,
    User,
    Volunteer,
    as_utc,
    utcnow,
)
from geo import District


class EntryDecidedError(DispatchError):
    """A ledger line that was approved or rejected already."""


def award(session: Session, entry: HoursEntry) -> PointsLine | None:
    """Add the points an approved hours line earns (none for zero or negative points)."""
    points = round(entry.hours * get_settings().points_per_hour)
    if points == 0:
        return None
    line = PointsLine(volunteer_id=entry.volunteer_id, points=points, reason="hours",
                      hours_entry_id=entry.id)
    session.add(line)
    return line


def credit_activity(session: Session, volunteer_id: int, *, hours: float, activity_id: int | None,
                    team_id: str | None, actor: User) -> HoursEntry:
    """Credit the hours of a check-out: approved at once, with their points."""
    entry = HoursEntry(volunteer_id=volunteer_id, activity_id=activity_id, team_id=team_id,
                       hours=hours, kind=HoursKind.ACTIVITY, state=EntryState.APPROVED,
                       note="", created_by=actor.id, decided_by=actor.id, decided_at=utcnow())
    session.add(entry)
    session.flush()
    award(session, entry)
    return entry


def propose(session: Session, district: District, volunteer_id: int, *, hours: float,
            kind: HoursKind, note: str, activity_id: int | None, actor: User) -> HoursEntry:
    """Record a leader's correction or back-fill for one of its team's volunteers (pending).

    Raises
    ------
    NotFoundError, ForbiddenError
        If the volunteer is not in the district, or the actor leads none of its teams.
    """
    volunteer = find_volunteer(session, district, volunteer_id)
    shared = led_teams(session, actor) & {m.team_id for m in teams_of(session, volunteer.id)}
    if actor.role != Role.ADMIN and not shared:
        msg = "只有本队队长或管理员可以补录或更正服务时长"
        raise ForbiddenError(msg, role=actor.role)
    entry = HoursEntry(volunteer_id=volunteer.id, activity_id=activity_id,
                       team_id=min(shared) if shared else None, hours=hours, kind=kind,
                       state=EntryState.PENDING, note=note, created_by=actor.id)
    session.add(entry)
    session.flush()
    return entry


def decide(session: Session, district: District, entry_id: int, *, approve: bool,
           actor: User) -> HoursEntry:
    """Approve (points follow) or reject a pending line (admin).

    Raises
    ------
    ForbiddenError, NotFoundError, EntryDecidedError
    """
    if actor.role != Role.ADMIN:
        msg = "只有管理员可以审核服务时长"
        raise ForbiddenError(msg, role=actor.role)
    entry = session.scalar(select(HoursEntry).where(HoursEntry.id == entry_id)
                           .with_for_update().execution_options(populate_existing=True))
    if entry is None or find_volunteer(session, district, entry.volunteer_id) is None:
        msg = f"没有编号为 {entry_id} 的时长记录"
        raise NotFoundError(msg, entry_id=entry_id)
    if entry.state != EntryState.PENDING:
        msg = "这条时长记录已审核过"
        raise EntryDecidedError(msg, state=entry.state)
    entry.state = EntryState.APPROVED if approve else EntryState.REJECTED
    entry.decided_by, entry.decided_at = actor.id, utcnow()
    session.flush()
    if approve:
        award(session, entry)
    return entry


def hours_total(session: Session, volunteer_id: int) -> float:
    """Return a volunteer's approved hours."""
    total = session.scalar(select(func.coalesce(func.sum(HoursEntry.hours), 0.0)).where(
        HoursEntry.volunteer_id == volunteer_id, HoursEntry.state == EntryState.APPROVED))
    return float(total or 0.0)


def points_balance(session: Session, volunteer_id: int) -> int:
    """Return a volunteer's points: the sum of its points ledger."""
    total = session.scalar(select(func.coalesce(func.sum(PointsLine.points), 0)).where(
        PointsLine.volunteer_id == volunteer_id))
    return int(total or 0)


def entry_public(entry: HoursEntry) -> dict[str, Any]:
    """Describe one hours line."""
    return {"id": entry.id, "volunteer_id": entry.volunteer_id, "activity_id": entry.activity_id,
            "team_id": entry.team_id, "hours": round(entry.hours, 2), "kind": entry.kind,
            "state": entry.state, "note": entry.note, "created_at": as_utc(entry.created_at),
            "decided_at": None if entry.decided_at is None else as_utc(entry.decided_at)}


def service_record(session: Session, volunteer: Volunteer) -> dict[str, Any]:
    """Return a volunteer's hours, star level, points and ledger lines (newest first)."""
    hours = hours_total(session, volunteer.id)
    level = star_level(hours)
    entries = session.scalars(select(HoursEntry).where(HoursEntry.volunteer_id == volunteer.id)
                              .order_by(HoursEntry.id.desc())).all()
    return {
        "volunteer_id": volunteer.id, "name": volunteer.name, "hours": round(hours, 2),
        "star_level": level, "star_name": STAR_ZH[level],
        "next_star_hours": STAR_HOURS[level] if level < len(STAR_HOURS) else None,
        "points": points_balance(session, volunteer.id),
        "entries": [entry_public(e) for e in entries],
    }


def _month_start(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end


def volunteer_ranking(session: Session, district: District, *, month: str | None = None,
                      by_team: bool = False, limit: int = 20) -> dict[str, Any]:
    """Rank volunteers (or teams, by their members' lines) by approved hours.

    ``month`` (``YYYY-MM``, UTC) counts the lines approved that month; without it, all time.
    """
    stmt = (select(HoursEntry.volunteer_id, HoursEntry.team_id, HoursEntry.hours)
            .join(Volunteer, Volunteer.id == HoursEntry.volunteer_id)
            .where(Volunteer.district == district.name,
                   HoursEntry.state == EntryState.APPROVED))
    if month:
        start, end = _month_start(month)
        stmt = stmt.where(HoursEntry.decided_at >= start, HoursEntry.decided_at < end)
    totals: dict[Any, float] = {}
    for volunteer_id, team_id, hours in session.execute(stmt).tuples():
        key = team_id if by_team else volunteer_id
        if key is not None:
            totals[key] = totals.get(key, 0.0) + float(hours)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
    if by_team:
        names = dict(session.execute(select(Team.team_id, Team.name).where(
            Team.team_id.in_([k for k, _ in ranked]))).tuples().all())
        members = dict(session.execute(
            select(TeamMember.team_id, func.count()).group_by(TeamMember.team_id)).tuples().all())
        items = [{"rank": i + 1, "id": k, "name": names.get(k, k), "hours": round(h, 2),
                  "members": int(members.get(k, 0))} for i, (k, h) in enumerate(ranked)]
    else:
        people: dict[int, str] = dict(session.execute(select(Volunteer.id, Volunteer.name).where(
            Volunteer.id.in_([k for k, _ in ranked]))).tuples().all())
        items = [{"rank": i + 1, "id": k, "name": people.get(k, ""), "hours": round(h, 2),
                  "star_level": star_level(h) if not month else None}
                 for i, (k, h) in enumerate(ranked)]
    return {"period": month or "all", "by": "team" if by_team else "volunteer", "items": items}
