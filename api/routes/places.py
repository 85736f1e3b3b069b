"""Practice positions and coverage of the served district."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DistrictDep
from api.schemas.places import CoveragePublic, FeatureCollection
from api.services.planning import coverage_report
from api.services.sites import sites_geojson

router = APIRouter(tags=["sites"])


@router.get("/sites", response_model=FeatureCollection)
def sites(
    district: DistrictDep,
    level: Annotated[str | None, Query(description="center, township, community or site")] = None,
    category: Annotated[str | None, Query(description="Service category code")] = None,
) -> dict[str, Any]:
    """Every practice position (中心/所/站/点) as GeoJSON points (demo registry)."""
    return sites_geojson(district, level=level, category_code=category)


@router.get("/coverage", response_model=CoveragePublic)
def coverage(
    district: DistrictDep,
    minutes: Annotated[float, Query(gt=0, le=120)] = 15.0,
    walk_m_per_min: Annotated[
        float | None, Query(gt=0, le=200, description="Pace (default: the profile's)")
    ] = None,
    profile: Annotated[str, Query(description="standard, elderly or wheelchair")] = "standard",
    category: Annotated[str | None, Query(description="Service category code (8+N)")] = None,
) -> dict[str, Any]:
    """Share of the district (nodes, cells, residents) within a walk of a practice position."""
    return coverage_report(
        district, minutes=minutes, walk_m_per_min=walk_m_per_min, profile_name=profile,
        category_code=category,
    )
