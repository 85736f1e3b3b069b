"""Say which teams a user acts for: a team's own account, or a volunteer who leads the team.

Dispatch (accept, decline, complete), photos, sign-up lists, check-in codes, hours and the
store's pick-ups all ask the same question, so it is answered here once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import Role
from api.storage.models import TeamMember, User, Volunteer


def led_teams(session: Session, user: User) -> frozenset[str]:
    """Return the ids of the teams the user acts for as leader.

    A team account acts for its own team; a volunteer for each team where their membership is
    marked ``leader``; anyone else for none.
    """
    if user.role == Role.TEAM and user.team_id:
        return frozenset({user.team_id})
    if user.role != Role.VOLUNTEER:
        return frozenset()
    return frozenset(session.scalars(
        select(TeamMember.team_id).join(Volunteer, Volunteer.id == TeamMember.volunteer_id)
        .where(Volunteer.user_id == user.id, TeamMember.leader.is_(True))))


def acts_for_team(session: Session, user: User, team_id: str) -> bool:
    """Tell whether the user is the team's account or a volunteer who leads it."""
    return team_id in led_teams(session, user)
