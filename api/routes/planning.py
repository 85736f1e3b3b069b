"""Planning analytics: coverage by category and profile, gaps, service areas, recommendations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import DistrictDep
from api.schemas.places import FeatureCollection
from api.schemas.planning import CategoryTable, PlanningParams
from api.services import planning

router = APIRouter(tags=["planning"])


MinutesQuery = Annotated[float, Query(gt=0, le=120, description="Walking time limit")]
ProfileQuery = Annotated[str, Query(description="Walking profile: standard, elderly or wheelchair")]
CategoryQuery = Annotated[str | None, Query(description="Service category code (8+N)")]


def planning_params(
    minutes: MinutesQuery = 15.0,
    profile: ProfileQuery = "standard",
    category: CategoryQuery = None,
) -> PlanningParams:
    """Group the planning query parameters."""
    return PlanningParams(minutes=minutes, profile=profile, category=category)


ParamsDep = Annotated[PlanningParams, Depends(planning_params)]


@router.get("/coverage/categories", response_model=CategoryTable)
def coverage_by_category(district: DistrictDep, params: ParamsDep) -> dict[str, Any]:
    """F15, resident-weighted mean minutes and Gini of access for each 8+N category."""
    return {
        "district": district.name,
        "minutes": params.minutes,
        "profile": params.profile,
        "population_method": planning.demand(district).attrs.get("population_method", ""),
        "categories": planning.category_table(
            district, minutes=params.minutes, profile_name=params.profile
        ),
    }


@router.get("/gaps", response_model=FeatureCollection)
def gaps(district: DistrictDep, params: ParamsDep) -> dict[str, Any]:
    """Gap areas (uncovered cells dissolved), ranked by residents, as GeoJSON."""
    g = planning.gap_areas(
        district, minutes=params.minutes, profile_name=params.profile,
        category_code=params.category,
    )
    return planning.to_feature_collection(
        g, district=district.name, minutes=params.minutes, profile=params.profile,
        category=params.category, **planning.population_properties(district),
    )


@router.get("/service-areas", response_model=FeatureCollection)
def service_areas(
    district: DistrictDep, minutes: MinutesQuery = 15.0, profile: ProfileQuery = "standard"
) -> dict[str, Any]:
    """Each position's walking service area, built from the streets it reaches, as GeoJSON."""
    areas, union = planning.district_service_areas(district, minutes=minutes, profile_name=profile)
    covered = float(union["area_km2"].iloc[0]) if len(union) else 0.0
    return planning.to_feature_collection(
        areas, district=district.name, minutes=minutes, profile=profile,
        covered_area_km2=round(covered, 4), demo=True,
    )


@router.get("/recommendations", response_model=FeatureCollection)
def recommendations(
    district: DistrictDep,
    minutes: MinutesQuery = 15.0,
    category: CategoryQuery = None,
    add: Annotated[int, Query(ge=1, le=200, description="Number of sites to add")] = 5,
    method: Annotated[str, Query(pattern="^(auto|exact|greedy)$")] = "auto",
) -> dict[str, Any]:
    """Real places to open as sites so the most residents newly get within the limit.

    Computed at the standard pace on the full walking network.
    """
    picks = planning.recommendations(
        district, add=add, category_code=category, minutes=minutes, method=method
    )
    return planning.recommendations_collection(picks, planning.population_properties(district))
