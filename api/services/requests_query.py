"""Find the service requests a user may see: one by id, or a page of them.

One rule (:func:`may_see`) answers for reading and for acting: residents see their own orders;
volunteers their own orders (a volunteer is a resident too) and those assigned to the teams they
lead; teams those assigned to them and the open pool of their categories; 所/站 accounts those
of their area; dispatchers and admins all. Any other id is "not found" to read and to act on
alike (404, never 403), so ids cannot be walked to learn which orders exist, where, or to read
residents' descriptions and positions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, or_, select
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


def may_see(session: Session, user: User, req: ServiceRequest) -> bool:
    """Tell whether the user may see (and so try to act on) a request: the one rule."""
    if user.role in (Role.DISPATCHER, Role.ADMIN):
        return True
    if user.role in (Role.RESIDENT, Role.VOLUNTEER) and req.resident_id == user.id:
        return True
    if user.role == Role.TEAM:
        return req.team_id == user.team_id or (
            req.state == RequestState.SUBMITTED
            and req.category in _pool_categories(session, user))
    if user.role == Role.VOLUNTEER:
        return req.team_id is not None and req.team_id in led_teams(session, user)
    if user.role == Role.STATION:
        return req.area_site_id in station_area(session, user)
    return False


def visible(
    session: Session, user: User, request_id: int, district: District, *, lock: bool = False
) -> ServiceRequest:
    """Return a request of the district that the user may see (``lock``: for update).

    Reading (:func:`get_request`) and every action (:func:`api.services.dispatch.act`) go
    through here, so an order the caller may not see answers alike: 404.

    Raises
    ------
    NotFoundError
        If there is none, it is another district's, or the user may not see it
        (:func:`may_see`).
    """
    stmt = select(ServiceRequest).where(ServiceRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    req = session.scalar(stmt)
    if req is None or req.district != district.name or not may_see(session, user, req):
        msg = f"没有编号为 {request_id} 的服务请求"
        raise NotFoundError(msg, request_id=request_id)
    return req


def get_request(
    session: Session, district: District, user: User, request_id: int
) -> dict[str, Any]:
    """Return one request with its history, as the user may see it (:func:`visible`)."""
    return present(session, visible(session, user, request_id, district), user)


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
    """List the requests the user may see (:func:`may_see`, as a query), newest first.

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
        where.append(or_(ServiceRequest.resident_id == user.id,
                         ServiceRequest.team_id.in_(sorted(led_teams(session, user)))))
    elif user.role == Role.STATION:
        where.append(ServiceRequest.area_site_id.in_(sorted(station_area(session, user))))
    elif user.role not in (Role.DISPATCHER, Role.ADMIN):
        where.append(false())  # a role that sees nothing (may_see)
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
