"""Say what the teams near a point offer: for each "8+N" category, the nearest that can take it.

The 服务菜单 of the phone pages. Each line is the first of the ranking the dispatcher uses
(:func:`api.services.matching.rank_teams`, eligible teams only), so the team a resident sees
on the menu is the one a 派单 to the nearest capable team would pick at that moment.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from api.services.matching import rank_teams
from geo import CATEGORIES, DEFAULT_WALK_M_PER_MIN, District

#: The service circle's promise: a team within this many walking minutes.
CIRCLE_MINUTES = 15.0


def service_menu(
    session: Session,
    district: District,
    *,
    lon: float,
    lat: float,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
) -> dict[str, Any]:
    """Return, for every category, the nearest team that can take an order there now.

    Parameters
    ----------
    session
        Database session (teams and their open requests).
    district
        The district whose network and registry to use.
    lon, lat
        WGS84 position of the resident.
    walk_m_per_min
        Walking pace.

    Returns
    -------
    dict
        ``lon``, ``lat``, ``minutes`` (the circle's limit) and ``items``: one per category in
        the 8+N order, with the team (``None`` fields when no team can take it), its position,
        the walking minutes and ``within_15``.

    Raises
    ------
    OutOfAreaError
        If the point is too far from every street.
    """
    seats = district.positions.set_index("site_id").geometry
    items = []
    for c in CATEGORIES:
        ranking = rank_teams(session, district, lon=lon, lat=lat, category=c.code, limit=1,
                             eligible_only=True, walk_m_per_min=walk_m_per_min)
        best = ranking.candidates[0] if ranking.candidates else None
        item: dict[str, Any] = {"category": c.code, "category_zh": c.name, "available": False,
                                "team_id": None, "team_name": None, "site_id": None,
                                "site_name": None, "site_level": None, "site_lon": None,
                                "site_lat": None, "walk_m": None, "walk_minutes": None,
                                "within_15": False}
        if best is not None and math.isfinite(best.walk_m):
            seat = seats.get(best.site_id)
            item.update({
                "available": True, "team_id": best.team_id, "team_name": best.name,
                "site_id": best.site_id, "site_name": best.site_name,
                "site_level": best.site_level,
                "site_lon": None if seat is None else round(float(seat.x), 6),
                "site_lat": None if seat is None else round(float(seat.y), 6),
                "walk_m": round(best.walk_m, 1),
                "walk_minutes": round(best.walk_minutes, 1),
                "within_15": best.walk_minutes <= CIRCLE_MINUTES,
            })
        items.append(item)
    return {"lon": round(lon, 6), "lat": round(lat, 6), "minutes": CIRCLE_MINUTES,
            "walk_m_per_min": round(walk_m_per_min, 3), "items": items}
