"""Schemas of the planning routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BaseModel

from geo import MAX_WALK_M_PER_MIN, MIN_WALK_M_PER_MIN


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


# Query parameters of the planning routes, bounded so that no request costs unbounded work.

#: Walking-time limits any planning answer may use (minutes).
MAX_MINUTES = 60.0
#: Limits with precomputed service areas: the 5-, 10- and 15-minute circles.
SERVICE_AREA_MINUTES = (5, 10, 15)
#: Most sites one recommendation may add.
MAX_ADD = 50

MinutesQuery = Annotated[
    float, Query(ge=1, le=MAX_MINUTES, description="Walking time limit in minutes (1-60)")
]
ProfileQuery = Annotated[
    str,
    Query(max_length=32, description="Walking profile: standard, elderly or wheelchair",
          json_schema_extra={"examples": ["standard", "elderly", "wheelchair"]}),
]
CategoryQuery = Annotated[
    str | None, Query(max_length=32, description="Service category code (8+N)")
]
PaceQuery = Annotated[
    float | None,
    Query(ge=MIN_WALK_M_PER_MIN, le=MAX_WALK_M_PER_MIN,
          description=f"Pace in metres per minute ({MIN_WALK_M_PER_MIN:.0f}-"
                      f"{MAX_WALK_M_PER_MIN:.0f}; default: the profile's)"),
]


def _standard_limit(minutes: int) -> int:
    if minutes not in SERVICE_AREA_MINUTES:
        msg = f"minutes must be one of {', '.join(map(str, SERVICE_AREA_MINUTES))}"
        raise ValueError(msg)
    return minutes


ServiceAreaMinutesQuery = Annotated[
    int,
    Query(description="5, 10 or 15 (the served circles)",
          json_schema_extra={"enum": list(SERVICE_AREA_MINUTES)}),
    AfterValidator(_standard_limit),
]
