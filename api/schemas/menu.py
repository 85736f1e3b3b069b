"""Pydantic schemas of the service menu (服务菜单): what the teams near a point offer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from geo.registry import Level


class MenuItem(BaseModel):
    """One category of the menu and the nearest team that can take an order of it now."""

    category: str = Field(description="Category code (GET /categories)")
    category_zh: str
    available: bool = Field(description="False when no team can take it (the fields below null)")
    team_id: str | None
    team_name: str | None
    site_id: str | None = Field(description="The position where the team is seated")
    site_name: str | None
    site_level: Level | None
    site_lon: float | None = Field(description="The seat's longitude (WGS84)")
    site_lat: float | None = Field(description="The seat's latitude (WGS84)")
    walk_m: float | None = Field(description="Walking metres on the street network")
    walk_minutes: float | None
    within_15: bool = Field(description="Within the 15-minute circle")


class ServiceMenu(BaseModel):
    """For each "8+N" category, the nearest team by walking minutes that can take an order."""

    lon: float = Field(description="The point asked about (WGS84)")
    lat: float = Field(description="The point asked about (WGS84)")
    minutes: float = Field(description="The circle's limit in walking minutes")
    walk_m_per_min: float
    items: list[MenuItem]
