"""Pydantic schemas of the public API (apart from storage models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class WorstCell(BaseModel):
    """A grid cell far from any practice position."""

    cell_id: str
    walk_minutes: float
    nearest_site: str | None
    lon: float
    lat: float


class CoveragePublic(BaseModel):
    """Walking coverage of a district."""

    district: str
    source: str
    extract_share: float = Field(description="Share of the district's area the OSM extract covers")
    extract_note: str
    network_km: float
    nodes: int
    edges: int
    sites: int
    sites_by_level: dict[str, int]
    teams: int
    cells: int
    minutes: float
    walk_m_per_min: float
    limit_m: float
    covered_node_share: float
    covered_cell_share: float
    median_node_minutes: float | None
    worst_cells: list[WorstCell]
    demo_registry: bool
    attribution: str
    profile: str = "standard"
    category: str | None = None
    extra_sites: str | None = None
    residents: dict[str, Any] | None = Field(
        default=None, description="Residents within the limit (F15) and how they were estimated"
    )


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection (EPSG:4326, lon/lat)."""

    type: str = "FeatureCollection"
    features: list[dict[str, Any]]
    properties: dict[str, Any] = Field(default_factory=dict)
