"""Planning analytics as the CLI and the API report them: residents, categories, gaps, siting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from api.schemas.planning import PlanningParams
from api.services.analysis import analysis_for, analysis_of, pace
from api.services.coverage import cell_points, coverage_summary
from geo import Coverage, District
from geo.categories import CATEGORIES
from geo.coverage import access_stats, category_coverage
from geo.gaps import gaps
from geo.network import WalkNetwork
from geo.profiles import profile
from geo.service_areas import covered_area, service_areas
from geo.siting import recommend_sites


def demand(district: District, demand_file: str | None = None) -> gpd.GeoDataFrame:
    """Residents per cell (bundled estimate, WorldPop dasymetric, or the user's file)."""
    return analysis_for(district).demand(demand_file)


def profile_network(district: District, profile_name: str) -> WalkNetwork:
    """Return the walking network a profile can use (wheelchair: no steps)."""
    return analysis_for(district).profile_network(profile_name)


def planning_coverage(
    district: District,
    *,
    minutes: float = 15.0,
    profile_name: str = "standard",
    walk_m_per_min: float | None = None,
    category_code: str | None = None,
    extra_sites: str | None = None,
) -> Coverage:
    """Coverage for a profile, optionally one category and optionally with extra sites.

    Kept by the district's analysis on its registry version (:meth:`VersionAnalysis.coverage
    <api.services.analysis.VersionAnalysis.coverage>`), shared by the map, the CLI and the API.
    """
    return analysis_of(district).coverage(
        minutes=minutes, profile_name=profile_name, walk_m_per_min=walk_m_per_min,
        category_code=category_code, extra_sites=extra_sites,
    )


def residents_summary(district: District, cov: Coverage, dem: gpd.GeoDataFrame) -> dict[str, Any]:
    """Residents within the limit (F15), weighted mean minutes and Gini, with the method."""
    pop = dem["population"].reindex(cov.cells.index).fillna(0.0).to_numpy()
    stats = access_stats(cov.cells["walk_minutes"].to_numpy(), pop, minutes=cov.minutes)
    return {
        "residents": round(float(pop.sum()), 1),
        "residents_within": round(float(pop[cov.cells["covered"].to_numpy()].sum()), 1),
        **{k: (round(float(v), 4) if isinstance(v, float | np.floating) else v)
           for k, v in stats.items()},
        "population_method": dem.attrs.get("population_method", ""),
        "population_unit": dem.attrs.get("population_unit", ""),
        "population_note": dem.attrs.get("population_note", ""),
    }


def category_table(
    district: District,
    *,
    minutes: float = 15.0,
    profile_name: str = "standard",
    walk_m_per_min: float | None = None,
    demand_file: str | None = None,
) -> list[dict[str, Any]]:
    """Per-category F15, weighted mean minutes and Gini, one row per 8+N category.

    Kept per limit, profile, pace and residents file on the district's registry version.
    """
    prof = profile(profile_name)
    speed = pace(prof, walk_m_per_min)

    def make() -> list[dict[str, Any]]:
        table = category_coverage(
            profile_network(district, prof.name), district.positions, district.cells,
            demand(district, demand_file), teams=district.teams, minutes=minutes,
            walk_m_per_min=speed, cell_points=cell_points(district),
        )
        rows = json.loads(table.reset_index(names="category").to_json(orient="records"))
        return [dict(r) for r in rows]

    key = ("category_table", float(minutes), prof.name, speed, demand_file)
    return [dict(r) for r in analysis_of(district).memo(key, make)]  # callers may add to rows


def gap_areas(
    district: District,
    *,
    minutes: float = 15.0,
    profile_name: str = "standard",
    walk_m_per_min: float | None = None,
    category_code: str | None = None,
    demand_file: str | None = None,
) -> gpd.GeoDataFrame:
    """Uncovered cells dissolved into gap areas, ranked by residents."""
    cov = planning_coverage(
        district, minutes=minutes, profile_name=profile_name, walk_m_per_min=walk_m_per_min,
        category_code=category_code,
    )
    return gaps(cov.cells, district.cells, demand(district, demand_file),
                positions=district.positions, category=category_code)


def district_service_areas(
    district: District, *, minutes: float = 15.0, profile_name: str = "standard"
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Each position's walking service area and their union, kept per limit and profile."""
    prof = profile(profile_name)

    def make() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        areas = service_areas(
            profile_network(district, prof.name), district.positions, minutes=minutes,
            walk_m_per_min=prof.walk_m_per_min,
        )
        return areas, covered_area(areas)

    return analysis_of(district).memo(("service_areas", float(minutes), prof.name), make)


def recommendations(
    district: District,
    *,
    add: int,
    category_code: str | None = None,
    minutes: float = 15.0,
    method: str = "auto",
    demand_file: str | None = None,
) -> pd.DataFrame:
    """Real places to open as sites, most newly covered residents first (existing kept)."""
    dem = demand(district, demand_file)
    weights = dem["population"].reindex(district.cells["cell_id"]).fillna(0.0).to_numpy()
    return recommend_sites(
        district, add, weights, category=category_code, method=method,  # type: ignore[arg-type]
        minutes=minutes, cell_points=cell_points(district),
    )


def to_feature_collection(gdf: gpd.GeoDataFrame, **properties: Any) -> dict[str, Any]:
    """Return a GeoDataFrame as a GeoJSON dict (WGS84), NaN written as null."""
    fc: dict[str, Any] = json.loads(gdf.to_crs("EPSG:4326").to_json(drop_id=True, na="null"))
    fc["properties"] = properties
    return fc


def recommendations_collection(
    picks: pd.DataFrame, population_properties: dict[str, str] | None = None
) -> dict[str, Any]:
    """Recommended sites as GeoJSON points with the run's figures."""
    gdf = gpd.GeoDataFrame(
        picks, geometry=gpd.points_from_xy(picks["lon"], picks["lat"]), crs="EPSG:4326"
    )
    attrs = {str(k): _plain(v) for k, v in picks.attrs.items()}
    return to_feature_collection(gdf, **attrs, demo=True, **(population_properties or {}))


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


CATEGORY_NAMES = {c.code: c.name for c in CATEGORIES}


def coverage_report(
    district: District,
    *,
    minutes: float = 15.0,
    walk_m_per_min: float | None = None,
    profile_name: str = "standard",
    category_code: str | None = None,
    extra_sites: str | None = None,
    demand_file: str | None = None,
) -> dict[str, Any]:
    """Return the coverage summary with residents (``coverage --json``, ``/coverage``)."""
    cov = planning_coverage(
        district, minutes=minutes, profile_name=profile_name, walk_m_per_min=walk_m_per_min,
        category_code=category_code, extra_sites=extra_sites,
    )
    summary = coverage_summary(district, cov)
    summary.update(
        profile=profile_name,
        category=category_code,
        extra_sites=extra_sites,
        residents=residents_summary(district, cov, demand(district, demand_file)),
    )
    return summary


def population_properties(district: District, demand_file: str | None = None) -> dict[str, str]:
    """Return how residents were counted, for the properties of a GeoJSON answer."""
    attrs = demand(district, demand_file).attrs
    return {
        key: str(attrs.get(key, ""))
        for key in ("population_method", "population_unit", "population_note")
    }


# ----------------------------------------------------------------------------- API answers


def category_report(district: District, params: PlanningParams) -> dict[str, Any]:
    """Per-category coverage as ``GET /coverage/categories`` answers it."""
    return {
        "district": district.name,
        "minutes": params.minutes,
        "profile": params.profile,
        "population_method": demand(district).attrs.get("population_method", ""),
        "categories": category_table(
            district, minutes=params.minutes, profile_name=params.profile
        ),
    }


def gaps_collection(district: District, params: PlanningParams) -> dict[str, Any]:
    """Gap areas as ``GET /gaps`` answers them (GeoJSON with the run's figures)."""
    g = gap_areas(
        district, minutes=params.minutes, profile_name=params.profile,
        category_code=params.category,
    )
    return to_feature_collection(
        g, district=district.name, minutes=params.minutes, profile=params.profile,
        category=params.category, **population_properties(district),
    )


def service_areas_collection(
    district: District, *, minutes: float = 15.0, profile_name: str = "standard"
) -> dict[str, Any]:
    """Service areas as ``GET /service-areas`` answers them, built once per limit and profile."""

    def make() -> dict[str, Any]:
        areas, union = district_service_areas(district, minutes=minutes,
                                              profile_name=profile_name)
        covered = float(union["area_km2"].iloc[0]) if len(union) else 0.0
        return to_feature_collection(
            areas, district=district.name, minutes=minutes, profile=profile_name,
            covered_area_km2=round(covered, 4), demo=True,
        )

    # The answer is JSON-encoded by the caller, never modified: shared as it is.
    return analysis_of(district).memo(
        ("service_areas_collection", float(minutes), profile_name), make)


def recommendations_answer(
    district: District,
    *,
    add: int,
    category_code: str | None = None,
    minutes: float = 15.0,
    method: str = "auto",
) -> dict[str, Any]:
    """Recommended sites as ``GET /recommendations`` answers them."""
    picks = recommendations(
        district, add=add, category_code=category_code, minutes=minutes, method=method
    )
    return recommendations_collection(picks, population_properties(district))
