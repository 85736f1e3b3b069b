"""Say whether a volunteer team can take a request, and if not, why: the one eligibility rule.

Both the nearest-team ranking (``GET /teams/nearest``, :func:`api.services.matching.rank_teams`)
and the dispatcher's checks on a team it is about to assign (:mod:`api.services.team_pick`)
apply :func:`reasons_against`, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from api.domain import RequestState
from api.storage.models import ServiceRequest, Team

#: States in which a request takes up a place of its team's capacity (its load).
LOAD_STATES: frozenset[RequestState] = frozenset(
    {RequestState.DISPATCHED, RequestState.ACCEPTED})
#: Why a team is not eligible, in the order they are reported.
REASONS: dict[str, str] = {
    "category": "不提供该类服务",
    "inactive": "队伍暂停服务",
    "capacity": "已满负荷",
    "declined": "已拒绝过此单",
    "unreachable": "步行不可达",
}


def reasons_against(
    category: str,
    *,
    offered: Collection[str],
    active: bool,
    open_requests: int,
    capacity: int,
    declined: bool = False,
    reachable: bool = True,
) -> list[str]:
    """List why a team cannot take a request of ``category`` (empty: it can).

    Parameters
    ----------
    category
        Category code the request needs.
    offered
        Category codes the team offers.
    active
        Whether the team is in service.
    open_requests, capacity
        Requests it holds open (:data:`LOAD_STATES`) and how many it may hold at once.
    declined
        Whether it declined this request before.
    reachable
        Whether it can walk to the request at all.

    Returns
    -------
    list of str
        Keys of :data:`REASONS`, in its order.
    """
    reasons = []
    if category not in offered:
        reasons.append("category")
    if not active:
        reasons.append("inactive")
    if open_requests >= capacity:
        reasons.append("capacity")
    if declined:
        reasons.append("declined")
    if not reachable:
        reasons.append("unreachable")
    return reasons


def offered_categories(team: Team) -> list[str]:
    """Return the category codes a team offers (stored comma-separated)."""
    return team.categories.split(",")


def open_requests_by_team() -> Subquery:
    """Return a subquery of ``team_id`` and ``n``, the requests each team holds open."""
    return (
        select(ServiceRequest.team_id.label("team_id"), func.count().label("n"))
        .where(ServiceRequest.state.in_(sorted(LOAD_STATES)))
        .group_by(ServiceRequest.team_id)
        .subquery()
    )


def open_count(session: Session, team_id: str) -> int:
    """Count the requests a team holds open."""
    return session.scalar(
        select(func.count()).select_from(ServiceRequest).where(
            ServiceRequest.team_id == team_id, ServiceRequest.state.in_(sorted(LOAD_STATES))
        )
    ) or 0


def team_reasons(
    session: Session, team: Team, category: str, declined: Collection[str] = ()
) -> list[str]:
    """List why a team (a row, counted now) cannot take a request; ``declined``: team ids."""
    return reasons_against(
        category, offered=offered_categories(team), active=team.active,
        open_requests=open_count(session, team.team_id), capacity=team.capacity,
        declined=team.team_id in declined,
    )
