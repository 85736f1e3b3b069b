"""Schemas of the planning routes."""

from __future__ import annotations

from pydantic import BaseModel


class PlanningParams(BaseModel):
    """Query parameters shared by the planning routes."""

    minutes: float = 15.0
    profile: str = "standard"
    category: str | None = None


class CategoryRow(BaseModel):
    """Residents' access to one service category."""

    category: str
    name: str
    positions: int
    residents: float
    residents_covered: float
    f15: float
    mean_minutes: float | None
    gini: float | None
    unreachable_share: float


class CategoryTable(BaseModel):
    """Per-category coverage of a district."""

    district: str
    minutes: float
    profile: str
    population_method: str
    categories: list[CategoryRow]
