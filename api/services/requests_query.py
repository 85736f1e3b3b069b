"""Find the service requests a user may see: one by id, or a page of them.

Residents see their own; teams those assigned to them and the open pool of their categories;
volunteers who lead teams those assigned to their teams; 所/站 accounts those of their area;
dispatchers and admins all. Any other id is "not found", so ids cannot be walked to read
residents' descriptions and positions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.domain import RequestState, Role
from api.services.dispatch_errors import NotFoundError
from api.services.eligibility import offered_categories
from api.services.escalation import station_area
from api.services.leaders import led_teams
from api.services.requests_view import present, present_many
from api.storage.models import ServiceRequest, Team, User
from geo import District


def _pool_categories(session: Session, user: User) -> list[str]:
    """Categories of the open requests a team user may see (those its team offers)."""
    team = session.get(Team, user.team_id)
    return offered_categories(team) if team else []


def visible(
    session: Session, user: User, request_id: int, district: District, *, lock: bool = False
) -> ServiceRequest:
    """Return a request of the district that the user may act on (``lock``: for update).

    Raises
    ------
    NotFoundError
        If there is none, it is another district's, or another resident's.
    """
    stmt = select(ServiceRequest).where(ServiceRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    req = session.scalar(stmt)
    if (
        req is None
        or req.district != district.name
        or (user.role == Role.RESIDENT and req.resident_id != user.id)
    ):
        msg = f"没有编号为 {request_id} 的服务请求"
        raise NotFoundError(msg, request_id=request_id)
    return req


def get_request(
    session: Session, district: District, user: User, request_id: int
) -> dict[str, Any]:
    """Return one request with its history, as the user may see it.

    A team reads what :func:`list_requests` shows it: requests assigned to it and the open pool
    of its categories.
    """
    req = visible(session, user, request_id, district)
    hidden = False
    if user.role == Role.TEAM and req.team_id != user.team_id:
        codes = _pool_categories(session, user)
        hidden = not (req.state == RequestState.SUBMITTED and req.category in codes)
    elif user.role == Role.VOLUNTEER:
        hidden = req.team_id is None or req.team_id not in led_teams(session, user)
    elif user.role == Role.STATION:
        hidden = req.area_site_id not in station_area(session, user)
    if hidden:
        msg = f"没有编号为 {request_id} 的服务请求"
        raise NotFoundError(msg, request_id=request_id)
    return present(session, req, user)


def list_requests(
    session: Session,
    district: District,
    user: User,
    *,
    state: RequestState | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """List the requests the user may see, newest first.

    ``bbox`` (lon/lat) filters on the stored geometry.
    """
    where: list[Any] = [ServiceRequest.district == district.name]
    if user.role == Role.RESIDENT:
        where.append(ServiceRequest.resident_id == user.id)
    elif user.role == Role.TEAM:
        codes = _pool_categories(session, user)
        where.append(or_(
            ServiceRequest.team_id == user.team_id,
            (ServiceRequest.state == RequestState.SUBMITTED) & ServiceRequest.category.in_(codes),
        ))
    elif user.role == Role.VOLUNTEER:
        where.append(ServiceRequest.team_id.in_(sorted(led_teams(session, user))))
    elif user.role == Role.STATION:
        where.append(ServiceRequest.area_site_id.in_(sorted(station_area(session, user))))
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
    return {"items": present_many(session, reqs, user), "count": count, "limit": limit,
            "offset": offset}
