"""The service menu (服务菜单) and 导航 links to any place (an order's address)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DistrictDep, PointDep, ReadSessionDep
from api.schemas.cards import NavigationLinks
from api.schemas.menu import ServiceMenu
from api.services import navigation
from api.services.menu import service_menu

router = APIRouter(prefix="/services", tags=["services"])
_OUT_OF_AREA: dict[int | str, dict[str, Any]] = {
    422: {"description": "Point too far from any street (out_of_area) or out of range",
          "content": {"application/problem+json": {}}}}


@router.get("/menu", response_model=ServiceMenu, responses=_OUT_OF_AREA)
def menu(district: DistrictDep, session: ReadSessionDep, point: PointDep) -> dict[str, Any]:
    """For each "8+N" category, the nearest team that can take an order now (public).

    The team is the first of ``GET /teams/nearest?eligible_only=true``: the one a 派单 to the
    nearest capable team would pick. ``within_15``: within 15 walking minutes.
    """
    return service_menu(session, district, lon=point.lon, lat=point.lat)


@router.get("/navigation", response_model=NavigationLinks,
            summary="Amap / Baidu walking hand-off links to a point (an order's place)")
def navigation_links(
    point: PointDep,
    name: Annotated[str, Query(min_length=1, max_length=60,
                               description="The destination's name in the other app")] = "目的地",
) -> dict[str, Any]:
    """Give the 导航 links to any point: the destination moved into GCJ-02 and BD-09.

    Positions have theirs on their card (``GET /positions/{id}/card``); this is for the place
    of an order, which a team leader walks to.
    """
    return navigation.links(point.lon, point.lat, name=name)
