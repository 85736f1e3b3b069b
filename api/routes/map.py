"""The practice map: its page, data, 离我最近, position cards and routes, search, assets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.deps import DistrictDep, OutCrsDep, PointDep, ReadSessionDep, WorkDep
from api.errors import ApiError
from api.schemas.cards import PositionCard, SearchResults
from api.schemas.places import FeatureCollection
from api.schemas.planning import MinutesQuery
from api.services.cards import position_card
from api.services.map_data import Body, basemap_body, coverage_cells, page_body, sites_body
from api.services.navigation import route_to
from api.services.nearest import nearest_positions
from api.services.search import MAX_LIMIT, MAX_QUERY, search_positions
from geo import (
    DEFAULT_WALK_M_PER_MIN,
    MAX_WALK_M_PER_MIN,
    MIN_WALK_M_PER_MIN,
    Crs,
    geojson_from_wgs84,
)
from maps import assets

router = APIRouter(tags=["map"])

for _prefix, _folder in assets.mounts().items():
    router.mount(_prefix, StaticFiles(directory=_folder, check_dir=False),
                 name=_prefix.strip("/").replace("/", "-"))


def _send(request: Request, body: Body, *, max_age: int = 300) -> Response:
    headers = {"ETag": body.etag, "Vary": "Accept-Encoding",
               "Cache-Control": f"public, max-age={max_age}"}
    if body.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(body.gz, media_type=body.media_type, headers=headers)
    return Response(body.raw, media_type=body.media_type, headers=headers)


def _page(request: Request, district: DistrictDep) -> Response:
    missing = assets.missing_assets()
    if missing:
        raise ApiError(503, "map_assets_missing", "地图脚本未安装",
                       f"{len(missing)} asset files are missing (first: {missing[0]}); "
                       "run `npm ci` at the repository root")
    return _send(request, page_body(district), max_age=60)


@router.get("/", response_class=HTMLResponse, summary="The practice map (served district)")
def index(request: Request, district: DistrictDep) -> Response:
    """Serve the practice map page of the served district."""
    return _page(request, district)


@router.get("/map", response_class=HTMLResponse, summary="The practice map of a district")
def map_page(request: Request, district: DistrictDep) -> Response:
    """Serve the practice map page (zh-CN, offline basemap, works at 360 px wide)."""
    return _page(request, district)


@router.get("/map/basemap", response_model=dict[str, Any],
            summary="Offline vector basemap from the district's own OSM data")
def basemap(request: Request, district: DistrictDep) -> Response:
    """Streets, water, green areas and buildings as GeoJSON FeatureCollections (WGS84)."""
    return _send(request, basemap_body(district), max_age=3600)


@router.get("/map/sites", response_model=FeatureCollection)
def sites_for_map(request: Request, district: DistrictDep) -> Response:
    """Every practice position with zh category names, team names and opening hours."""
    return _send(request, sites_body(district), max_age=60)


@router.get("/coverage/cells", response_model=FeatureCollection)
async def cells(
    request: Request, district: DistrictDep, work: WorkDep, minutes: MinutesQuery = 15.0
) -> Response:
    """Grid cells (H3) coloured on the map by walking minutes to the nearest position."""
    return await work.answer(request, coverage_cells, district, minutes=minutes)


@router.get("/nearest", response_model=FeatureCollection)
def nearest(
    district: DistrictDep,
    point: PointDep,
    limit: Annotated[int, Query(ge=1, le=20, description="How many positions")] = 3,
    category: Annotated[str | None, Query(description="Only this service category")] = None,
    walk_m_per_min: Annotated[
        float, Query(ge=MIN_WALK_M_PER_MIN, le=MAX_WALK_M_PER_MIN)
    ] = DEFAULT_WALK_M_PER_MIN,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Find the positions nearest by walking (离我最近), each with its route as a LineString."""
    fc = nearest_positions(district, point.lon, point.lat, limit=limit, category_code=category,
                           walk_m_per_min=walk_m_per_min)
    return geojson_from_wgs84(fc, crs=out_crs)


SiteId = Annotated[str, Path(min_length=1, max_length=64, description="Position id (小店区-S001)")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such open position in the district (not_found)"}}


@router.get("/positions/{site_id}/card", response_model=PositionCard, responses=_NOT_FOUND,
            summary="A position's card: contact, hours, teams, coming activities, 导航")
def position_card_route(
    site_id: SiteId, district: DistrictDep, session: ReadSessionDep
) -> dict[str, Any]:
    """Show what a resident sees on tapping an open position (public).

    The phone is the position's public one (``phone_tel`` to tap and call); ``navigation``
    holds the Amap (GCJ-02) and Baidu (BD-09) walking hand-off links.
    """
    return position_card(session, district, site_id)


@router.get("/positions/{site_id}/route", response_model=FeatureCollection,
            responses={**_NOT_FOUND, 422: {"description": "Start too far from any street "
                                                          "(out_of_area)"}})
def position_route(
    site_id: SiteId,
    district: DistrictDep,
    point: PointDep,
    walk_m_per_min: Annotated[
        float, Query(ge=MIN_WALK_M_PER_MIN, le=MAX_WALK_M_PER_MIN)
    ] = DEFAULT_WALK_M_PER_MIN,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Walk from a point to one open position: our route, as 离我最近 finds and draws it."""
    fc = route_to(district, site_id, point.lon, point.lat, walk_m_per_min=walk_m_per_min)
    return geojson_from_wgs84(fc, crs=out_crs)


@router.get("/search", response_model=SearchResults,
            summary="Find positions by name, pinyin or address")
def search(
    district: DistrictDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, pattern=r"\S",
                            description="Name, address or pinyin (全拼 or 首字母, e.g. xdq)")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows at most")] = 10,
) -> dict[str, Any]:
    """Open positions whose name, address or pinyin matches ``q``, best first, one row each."""
    return search_positions(district, q, limit=limit)
