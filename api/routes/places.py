"""Practice positions and coverage of the served district."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import DistrictDep, OutCrsDep, WorkDep
from api.schemas.places import CoveragePublic, FeatureCollection
from api.schemas.planning import CategoryQuery, MinutesQuery, PaceQuery, ProfileQuery
from api.services.planning import coverage_report
from api.services.sites import sites_geojson
from geo import Crs, geojson_from_wgs84

router = APIRouter(tags=["sites"])


@router.get("/sites", response_model=FeatureCollection)
def sites(
    district: DistrictDep,
    level: Annotated[str | None, Query(description="center, township, community or site")] = None,
    category: Annotated[str | None, Query(description="Service category code")] = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Every practice position (中心/所/站/点) as GeoJSON points (demo registry)."""
    fc = sites_geojson(district, level=level, category_code=category)
    return geojson_from_wgs84(fc, crs=out_crs)


@router.get("/coverage", response_model=CoveragePublic)
async def coverage(
    request: Request,
    district: DistrictDep,
    work: WorkDep,
    minutes: MinutesQuery = 15.0,
    walk_m_per_min: PaceQuery = None,
    profile: ProfileQuery = "standard",
    category: CategoryQuery = None,
) -> Response:
    """Share of the district (nodes, cells, residents) within a walk of a practice position."""
    return await work.answer(
        request, coverage_report, district, minutes=minutes, walk_m_per_min=walk_m_per_min,
        profile_name=profile, category_code=category,
    )
