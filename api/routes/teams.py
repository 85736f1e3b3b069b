"""Volunteer teams: the nearest by walking time, and the leaderboard of volunteer points."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DistrictDep, LookupSessionDep, OutCrsDep, PointDep
from api.schemas.dispatch import Leaderboard, TeamRanking
from api.services.leaderboard import leaderboard as leaderboard_of
from api.services.team_views import nearest_teams
from geo import Crs, geojson_from_wgs84

router = APIRouter(tags=["teams"])


@router.get("/teams/nearest", response_model=TeamRanking)
def nearest(
    district: DistrictDep,
    session: LookupSessionDep,
    point: PointDep,
    category: Annotated[str, Query(description="Service category code (GET /categories)")],
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
    eligible_only: Annotated[
        bool, Query(description="Leave out teams that cannot take it")
    ] = False,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Rank teams by walking minutes on the street network; say why each is (not) eligible."""
    ranking = nearest_teams(session, district, lon=point.lon, lat=point.lat, category=category,
                            limit=limit, eligible_only=eligible_only)
    return geojson_from_wgs84(ranking, crs=out_crs)


@router.get("/leaderboard", response_model=Leaderboard)
def leaderboard(
    district: DistrictDep,
    session: LookupSessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Rank teams by volunteer points (hours served and review stars), with star levels."""
    return leaderboard_of(session, district, limit=limit)
