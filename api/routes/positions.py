"""The registry over the API: admins open, edit and close positions and teams.

Every change goes through :mod:`api.services.registry` (checks, history, the district's registry
version) and is committed before the answer, so the next request to any worker serves it.
Edits name the version they start from with ``If-Match`` (the ``ETag`` of a GET): 428 without
it, 412 when someone changed the record meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from api.deps import (
    AdminDep,
    AdminReaderDep,
    DistrictDep,
    IfMatchDep,
    IfMatchOptionalDep,
    MaybeReaderDep,
    OutCrsDep,
    ReadSessionDep,
    SessionDep,
)
from api.schemas.registry import (
    PositionCreate,
    PositionPublic,
    PositionUpdate,
    RegistryHistory,
    TeamCreate,
    TeamPublic,
    TeamUpdate,
)
from api.services import registry
from api.services.dispatch_errors import NotFoundError
from api.storage.models import Position, Team, User
from geo import Crs, geojson_from_wgs84

router = APIRouter(tags=["registry"])

SiteId = Annotated[str, Path(min_length=1, max_length=64, description="Position id (小店区-S001)")]
TeamId = Annotated[str, Path(min_length=1, max_length=96, description="Team id")]


def _problems(what: str, *statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        401: "No or invalid bearer token (unauthorized)",
        403: "Not an admin (forbidden)",
        404: f"No such {what} in the district, or a closed one to a non-admin (not_found)",
        412: "`If-Match` names an older version (precondition_failed, with current_etag)",
        422: "Invalid body, unknown_category, out_of_area or invalid_registry_entry "
             "(unknown level, wrong parent, closed position)",
        428: "No `If-Match` on an edit (precondition_required)",
    }
    return {s: {"description": texts[s], "content": {"application/problem+json": {}}}
            for s in statuses}


_CREATE = (401, 403, 422)
_READ = (401, 404)
_EDIT = (401, 403, 404, 412, 422, 428)
_CLOSE = (401, 403, 404, 412)
_HISTORY = (401, 403, 404)
_HEADERS = {"ETag": {"description": "The version (send it back as If-Match)",
                     "schema": {"type": "string"}}}


def http_etag(row: Position | Team) -> str:
    """Return a row's entity tag as an HTTP header carries it (ids percent-encoded: ASCII)."""
    return quote(registry.etag(row), safe='"')


def _if_match(header: str | None) -> str | None:
    """Read ``If-Match`` back into the service's tags (:func:`api.services.registry.etag`)."""
    return None if header is None else unquote(header)


@contextmanager
def _tags_as_sent() -> Iterator[None]:
    """Give a 412's ``current_etag`` as the ``ETag`` header has it."""
    try:
        yield
    except registry.PreconditionFailedError as exc:
        exc.extra["current_etag"] = quote(exc.extra["current_etag"], safe='"')
        raise


def _answer(body: dict[str, Any], row: Position | Team, *, status: int = 200,
            location: str | None = None, out_crs: Crs = Crs.WGS84) -> JSONResponse:
    headers = {"ETag": http_etag(row), "Vary": "Authorization", "Cache-Control": "no-cache"}
    if location:
        headers["Location"] = location
    return JSONResponse(geojson_from_wgs84(body, crs=out_crs), status_code=status,
                        headers=headers)


def _location(request: Request, path: str) -> str:
    """Where the new row is read back (keeping ``district`` when the request named one)."""
    district = request.query_params.get("district")
    return path if district is None else f"{path}?district={quote(district, safe='')}"


def _position(row: Position, **kw: Any) -> JSONResponse:
    return _answer(PositionPublic.from_row(row).model_dump(mode="json"), row, **kw)


def _team(row: Team, user: User | None, **kw: Any) -> JSONResponse:
    masked = user is None or user.role != "admin"
    return _answer(TeamPublic.from_row(row, masked=masked).model_dump(mode="json"), row, **kw)


# ------------------------------------------------------------------------------ positions


@router.post("/positions", status_code=201, response_model=PositionPublic,
             responses={**_problems("position", *_CREATE), 201: {"headers": {
                 **_HEADERS, "Location": {"schema": {"type": "string"}}}}})
def create_position(
    request: Request,
    body: PositionCreate,
    district: DistrictDep,
    session: SessionDep,
    user: AdminDep,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """Open a practice position (admin); 201 with Location and ETag."""
    registry.lock_registry(session, district.name)
    row = registry.create_position(session, district, body.in_wgs84(), actor=user.name)
    session.commit()
    return _position(row, status=201, out_crs=out_crs,
                     location=_location(request, f"/positions/{quote(row.site_id, safe='')}"))


@router.get("/positions/{site_id}", response_model=PositionPublic,
            responses={**_problems("position", *_READ), 200: {"headers": _HEADERS}})
def get_position(
    site_id: SiteId,
    district: DistrictDep,
    session: ReadSessionDep,
    user: MaybeReaderDep,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """Show a position with its ETag (public; a closed one only to admins)."""
    row = registry.find_position(session, district, site_id)
    if not row.active and (user is None or user.role != "admin"):
        msg = f"阵地 {site_id} 已关闭"
        raise NotFoundError(msg)
    return _position(row, out_crs=out_crs)


@router.patch("/positions/{site_id}", response_model=PositionPublic,
              responses={**_problems("position", *_EDIT), 200: {"headers": _HEADERS}})
def update_position(
    site_id: SiteId,
    body: PositionUpdate,
    district: DistrictDep,
    session: SessionDep,
    user: AdminDep,
    if_match: IfMatchDep,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """Change fields of an open position (admin; ``If-Match`` required)."""
    with _tags_as_sent():
        row = registry.update_position(session, district, site_id, body.changes(),
                                       actor=user.name, if_match=_if_match(if_match))
    session.commit()
    return _position(row, out_crs=out_crs)


@router.delete("/positions/{site_id}", response_model=PositionPublic,
               responses={**_problems("position", *_CLOSE), 200: {"headers": _HEADERS}})
def close_position(
    site_id: SiteId,
    district: DistrictDep,
    session: SessionDep,
    user: AdminDep,
    if_match: IfMatchOptionalDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """Close a position and deactivate its teams (admin); kept with its history."""
    with _tags_as_sent():
        row = registry.close_position(session, district, site_id, actor=user.name,
                                      if_match=_if_match(if_match))
    session.commit()
    return _position(row, out_crs=out_crs)


@router.get("/positions/{site_id}/history", response_model=RegistryHistory,
            responses=_problems("position", *_HISTORY))
def position_history(
    site_id: SiteId, district: DistrictDep, session: ReadSessionDep, user: AdminReaderDep
) -> dict[str, Any]:
    """Who changed the position, what and when, oldest first (admin)."""
    registry.find_position(session, district, site_id)
    return {"entity": "position", "id": site_id,
            "changes": registry.history(session, district, site_id)}


# ---------------------------------------------------------------------------------- teams


@router.post("/teams", status_code=201, response_model=TeamPublic,
             responses={**_problems("team", *_CREATE), 201: {"headers": {
                 **_HEADERS, "Location": {"schema": {"type": "string"}}}}})
def create_team(
    request: Request, body: TeamCreate, district: DistrictDep, session: SessionDep,
    user: AdminDep,
) -> JSONResponse:
    """Seat a volunteer team at an open position (admin); 201 with Location and ETag."""
    registry.lock_registry(session, district.name)
    row = registry.create_team(session, district, body.data(), actor=user.name)
    session.commit()
    return _team(row, user, status=201,
                 location=_location(request, f"/teams/{quote(row.team_id, safe='')}"))


@router.get("/teams/{team_id}", response_model=TeamPublic,
            responses={**_problems("team", *_READ), 200: {"headers": _HEADERS}})
def get_team(
    team_id: TeamId, district: DistrictDep, session: ReadSessionDep, user: MaybeReaderDep
) -> JSONResponse:
    """Show a team with its ETag (public, leader's phone masked; an inactive one: admins)."""
    row = registry.find_team(session, district, team_id)
    if not row.active and (user is None or user.role != "admin"):
        msg = f"队伍 {team_id} 已停用"
        raise NotFoundError(msg)
    return _team(row, user)


@router.patch("/teams/{team_id}", response_model=TeamPublic,
              responses={**_problems("team", *_EDIT), 200: {"headers": _HEADERS}})
def update_team(
    team_id: TeamId,
    body: TeamUpdate,
    district: DistrictDep,
    session: SessionDep,
    user: AdminDep,
    if_match: IfMatchDep,
) -> JSONResponse:
    """Change fields of a team (admin; ``If-Match`` required)."""
    with _tags_as_sent():
        row = registry.update_team(session, district, team_id, body.changes(), actor=user.name,
                                   if_match=_if_match(if_match))
    session.commit()
    return _team(row, user)


@router.delete("/teams/{team_id}", response_model=TeamPublic,
               responses={**_problems("team", *_CLOSE), 200: {"headers": _HEADERS}})
def close_team(
    team_id: TeamId,
    district: DistrictDep,
    session: SessionDep,
    user: AdminDep,
    if_match: IfMatchOptionalDep = None,
) -> JSONResponse:
    """Deactivate a team (admin): it takes no more requests; kept with its history."""
    with _tags_as_sent():
        row = registry.close_team(session, district, team_id, actor=user.name,
                                  if_match=_if_match(if_match))
    session.commit()
    return _team(row, user)


@router.get("/teams/{team_id}/history", response_model=RegistryHistory,
            responses=_problems("team", *_HISTORY))
def team_history(
    team_id: TeamId, district: DistrictDep, session: ReadSessionDep, user: AdminReaderDep
) -> dict[str, Any]:
    """Who changed the team, what and when, oldest first (admin)."""
    registry.find_team(session, district, team_id)
    return {"entity": "team", "id": team_id,
            "changes": registry.history(session, district, team_id)}
