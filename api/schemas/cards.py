"""Pydantic schemas of a position's card, search hits and the Amap / Baidu hand-off links."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Category(BaseModel):
    """A service category: its code and zh-CN name."""

    code: str
    name: str


class NavigationLinks(BaseModel):
    """Walking hand-off to other map apps, the destination moved into each one's datum."""

    amap: str = Field(description="Amap (高德地图) URI, destination in GCJ-02 (coordinate=gaode)")
    baidu: str = Field(description="Baidu Maps (百度地图) URI, destination in BD-09 (bd09ll)")
    gcj02: list[float] = Field(min_length=2, max_length=2,
                               description="The destination's [lon, lat] in GCJ-02")
    bd09: list[float] = Field(min_length=2, max_length=2,
                              description="The destination's [lon, lat] in BD-09")


class CardTeam(BaseModel):
    """A volunteer team at the position."""

    team_id: str
    name: str
    categories: list[Category]


class CardActivity(BaseModel):
    """An activity coming up at the position (not cancelled, not ended)."""

    id: int
    title: str
    category: str
    category_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    confirmed: int
    spaces_left: int


class PositionCard(BaseModel):
    """What a resident sees on tapping an open position."""

    site_id: str
    district: str
    name: str
    level: str = Field(description="center, township, community or site")
    level_zh: str = Field(description="中心, 所, 站 or 点 in full (e.g. 新时代文明实践站)")
    categories: list[Category] = Field(description="Services the position is listed for")
    address: str | None
    phone: str | None = Field(description="Public phone of the position")
    phone_tel: str | None = Field(description="The phone as a `tel:` URI to tap and call")
    opening_hours: str | None
    lon: float = Field(description="WGS84 longitude (as stored)")
    lat: float = Field(description="WGS84 latitude (as stored)")
    demo: bool = Field(description="True for the generated demo registry")
    teams: list[CardTeam] = Field(description="Active teams seated here")
    activities: list[CardActivity] = Field(
        description="Up to 5 activities here not cancelled and not ended, soonest first")
    navigation: NavigationLinks


class SearchHit(BaseModel):
    """One open position matching a search (one row per position)."""

    site_id: str
    name: str
    level: str
    level_zh: str
    address: str | None
    parent_name: str | None = Field(description="Name of the position it belongs to")
    lon: float = Field(description="WGS84 longitude")
    lat: float = Field(description="WGS84 latitude")
    matched: str = Field(description="What matched: name, pinyin or address")


class SearchResults(BaseModel):
    """Open positions matching a query, best first."""

    query: str
    total: int = Field(description="Positions matching (rows beyond `limit` not listed)")
    items: list[SearchHit]
