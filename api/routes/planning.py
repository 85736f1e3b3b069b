"""Planning analytics: coverage by category and profile, gaps, service areas, recommendations.

Each answer is computed on the app's limiter of expensive work (a few at once, 503 beyond).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import DistrictDep, WorkDep
from api.schemas.places import FeatureCollection
from api.schemas.planning import (
    MAX_ADD,
    CategoryQuery,
    CategoryTable,
    MinutesQuery,
    PlanningParams,
    ProfileQuery,
    ServiceAreaMinutesQuery,
)
from api.services import planning

router = APIRouter(tags=["planning"])


def planning_params(
    minutes: MinutesQuery = 15.0,
    profile: ProfileQuery = "standard",
    category: CategoryQuery = None,
) -> PlanningParams:
    """Group the planning query parameters."""
    return PlanningParams(minutes=minutes, profile=profile, category=category)


ParamsDep = Annotated[PlanningParams, Depends(planning_params)]


@router.get("/coverage/categories", response_model=CategoryTable)
async def coverage_by_category(
    request: Request, district: DistrictDep, params: ParamsDep, work: WorkDep
) -> Response:
    """F15, resident-weighted mean minutes and Gini of access for each 8+N category."""
    return await work.answer(request, planning.category_report, district, params)


@router.get("/gaps", response_model=FeatureCollection)
async def gaps(
    request: Request, district: DistrictDep, params: ParamsDep, work: WorkDep
) -> Response:
    """Gap areas (uncovered cells dissolved), ranked by residents, as GeoJSON."""
    return await work.answer(request, planning.gaps_collection, district, params)


@router.get("/service-areas", response_model=FeatureCollection)
async def service_areas(
    request: Request,
    district: DistrictDep,
    work: WorkDep,
    minutes: ServiceAreaMinutesQuery = 15,
    profile: ProfileQuery = "standard",
) -> Response:
    """Each position's walking service area, built from the streets it reaches, as GeoJSON."""
    return await work.answer(request, planning.service_areas_collection, district,
                          minutes=minutes, profile_name=profile)


@router.get("/recommendations", response_model=FeatureCollection)
async def recommendations(
    request: Request,
    district: DistrictDep,
    work: WorkDep,
    minutes: Annotated[float, Query(ge=1, le=30, description="Walking time limit (1-30)")] = 15.0,
    category: CategoryQuery = None,
    add: Annotated[
        int, Query(ge=1, le=MAX_ADD, description=f"Number of sites to add (1-{MAX_ADD})")
    ] = 5,
    method: Annotated[str, Query(pattern="^(auto|exact|greedy)$")] = "auto",
) -> Response:
    """Real places to open as sites so the most residents newly get within the limit.

    Computed at the standard pace on the full walking network.
    """
    return await work.answer(request, planning.recommendations_answer, district, add=add,
                          category_code=category, minutes=minutes, method=method)
