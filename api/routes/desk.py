"""The dispatcher's workbench: the queue of open orders with SLA timers and duplicates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DistrictDep, OutCrsDep, ReaderDep, ReadSessionDep, SettingsDep
from api.domain import RequestState
from api.schemas.dispatch import DeskQueue
from api.services.desk_queue import desk_queue
from geo import Crs, geojson_from_wgs84
from geo.registry import Level

router = APIRouter(prefix="/desk", tags=["desk"])


@router.get("/queue", response_model=DeskQueue, responses={
    401: {"description": "No or invalid bearer token (unauthorized)"},
    403: {"description": "Not a dispatcher, admin or 所/站 account (forbidden)"},
})
def queue(
    district: DistrictDep,
    session: ReadSessionDep,
    user: ReaderDep,
    settings: SettingsDep,
    state: Annotated[
        RequestState | None, Query(description="Only open orders in this state")
    ] = None,
    level: Annotated[
        Level | None, Query(description="Only orders answered for at this level")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Open orders oldest first, each with its SLA timer, level and possible duplicates.

    Dispatchers and admins see the district's; a 所/站 account those of its area, and
    duplicates among those only (it never learns the ids of orders outside its area).
    """
    body = desk_queue(session, district, user, sla=settings.sla_minutes,
                      window_hours=settings.duplicate_window_hours,
                      walk_m=settings.duplicate_walk_m, state=state, level=level, limit=limit)
    return geojson_from_wgs84(body, crs=out_crs)
