"""Shape team rankings and the category list for the API."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from api.services.eligibility import REASONS
from api.services.matching import rank_teams
from geo import CATEGORIES, District


def nearest_teams(
    session: Session,
    district: District,
    *,
    lon: float,
    lat: float,
    category: str,
    limit: int = 10,
    eligible_only: bool = False,
) -> dict[str, Any]:
    """Rank teams by walking minutes from a point (see :func:`api.services.matching.rank_teams`)."""
    r = rank_teams(session, district, lon=lon, lat=lat, category=category, limit=limit,
                   eligible_only=eligible_only)
    teams = []
    for i, c in enumerate(r.candidates, start=1):
        finite = math.isfinite(c.walk_m)
        teams.append({
            "rank": i,
            "team_id": c.team_id,
            "name": c.name,
            "categories": c.categories,
            "site_id": c.site_id,
            "site_name": c.site_name,
            "site_level": c.site_level,
            "walk_m": round(c.walk_m, 1) if finite else None,
            "walk_minutes": round(c.walk_minutes, 2) if finite else None,
            "capacity": c.capacity,
            "open_requests": c.open_requests,
            "free_capacity": c.free_capacity,
            "active": c.active,
            "eligible": c.eligible,
            "reasons": c.reasons,
            "reasons_zh": [REASONS[x] for x in c.reasons],
        })
    return {
        "lon": r.lon, "lat": r.lat, "category": r.category, "access_m": round(r.access_m, 1),
        "walk_m_per_min": round(r.walk_m_per_min, 3), "considered": r.considered, "teams": teams,
    }


def categories_list() -> dict[str, Any]:
    """List the 8+N categories as the API shows them."""
    items = [
        {"code": c.code, "name": c.name, "name_en": c.name_en, "core": c.core} for c in CATEGORIES
    ]
    core = sum(c.core for c in CATEGORIES)
    return {"categories": items, "count": len(items), "core": core, "local": len(items) - core}
