"""Choose the team a request goes to (派单): a named one if it can take it, else the nearest.

Teams are locked while they are checked, so two dispatches cannot both fill a team's last place;
whether a team can take a request is :func:`api.services.eligibility.team_reasons`, the same rule
the nearest-team ranking applies.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas.dispatch import DispatchBody
from api.services.dispatch_errors import (
    NoEligibleTeamError,
    NotFoundError,
    TeamUnavailableError,
)
from api.services.eligibility import REASONS, team_reasons
from api.services.matching import rank_teams
from api.storage.models import ServiceRequest, Team, Transition
from geo import District


def declined_by(session: Session, request_id: int) -> frozenset[str]:
    """Return the ids of the teams that declined a request before."""
    rows = session.scalars(
        select(Transition.team_id).where(
            Transition.request_id == request_id, Transition.action == "decline"
        )
    )
    return frozenset(t for t in rows if t)


def lock_team(session: Session, team_id: str, district: District) -> Team:
    """Read a team of the district for update.

    Raises
    ------
    NotFoundError
        If the district has no such team.
    """
    team = session.scalar(
        select(Team).where(Team.team_id == team_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if team is None or team.district != district.name:
        msg = f"{district.name}没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    return team


def require_eligible(
    session: Session, team: Team, category: str, declined: frozenset[str]
) -> None:
    """Check that a (locked) team can take a request of ``category``.

    Raises
    ------
    TeamUnavailableError
        With the reasons (category, inactive, capacity, declined) it cannot.
    """
    reasons = team_reasons(session, team, category, declined)
    if reasons:
        why = "、".join(REASONS[r] for r in reasons)
        msg = f"队伍 {team.team_id} 现在不能接此单：{why}"
        raise TeamUnavailableError(msg, team_id=team.team_id, reasons=reasons)


def pick_team(
    session: Session, district: District, req: ServiceRequest, body: DispatchBody
) -> tuple[Team, str]:
    """Return the (locked) team to dispatch a request to and the note saying why.

    Raises
    ------
    NotFoundError, TeamUnavailableError
        If the named team does not exist or cannot take the request.
    NoEligibleTeamError
        If no team of the district can take it.
    """
    declined = declined_by(session, req.id)
    if body.team_id is not None:
        team = lock_team(session, body.team_id, district)
        require_eligible(session, team, req.category, declined)
        return team, "指定派单"
    ranking = rank_teams(
        session, district, lon=req.lon, lat=req.lat, category=req.category, limit=None,
        eligible_only=True, exclude=declined,
    )
    for cand in ranking.candidates:
        # Each look runs in a savepoint: a team found full is unlocked again (PostgreSQL drops
        # row locks with the savepoint), so two dispatches never hold teams the other waits for.
        look = session.begin_nested()
        team = lock_team(session, cand.team_id, district)
        if not team_reasons(session, team, req.category, declined):
            look.commit()
            return team, f"自动派单：最近的可接单队伍，步行约 {cand.walk_minutes:.1f} 分钟"
        look.rollback()
    msg = f"{district.name}没有能接此单的队伍（服务类别、是否在岗、剩余容量都不符）"
    raise NoEligibleTeamError(msg, considered=ranking.considered)
