"""A position's card: what a resident sees on tapping it, read from the registry and activities."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services.dispatch_errors import NotFoundError
from api.services.navigation import links
from api.services.registry import find_position
from api.storage.models import Activity, Team, as_utc, utcnow
from geo import District
from geo.categories import CATEGORIES
from geo.registry import LEVELS

#: Activities a card lists, soonest first.
CARD_ACTIVITIES = 5
_ZH: dict[str, str] = {str(c.code): c.name for c in CATEGORIES}
_DIAL = re.compile(r"[^0-9+]")


def _categories(stored: str) -> list[dict[str, str]]:
    return [{"code": c, "name": _ZH.get(c, c)} for c in stored.split(",") if c]


def tel_uri(phone: str | None) -> str | None:
    """Return a ``tel:`` URI for a public phone number (digits and a leading ``+`` only)."""
    if not phone:
        return None
    digits = _DIAL.sub("", phone)
    digits = digits[:1] + digits[1:].replace("+", "")
    return f"tel:{digits}" if sum(ch.isdigit() for ch in digits) >= 3 else None


def position_card(session: Session, district: District, site_id: str) -> dict[str, Any]:
    """Return the card of an open position: contact, hours, teams, coming activities, 导航.

    Raises
    ------
    NotFoundError
        If the district has no such position, or it is closed (the public sees open ones).
    """
    row = find_position(session, district, site_id)
    if not row.active:
        msg = f"阵地 {site_id} 已关闭"
        raise NotFoundError(msg)
    teams = session.scalars(
        select(Team).where(Team.site_id == row.site_id, Team.active.is_(True))
        .order_by(Team.team_id)
    ).all()
    activities = session.scalars(
        select(Activity)
        .where(Activity.site_id == row.site_id, Activity.cancelled.is_(False),
               Activity.ends_at >= utcnow())
        .order_by(Activity.starts_at, Activity.id)
        .limit(CARD_ACTIVITIES)
    ).all()
    level = str(row.level)
    return {
        "site_id": row.site_id,
        "district": row.district,
        "name": row.name,
        "level": level,
        "level_zh": LEVELS.get(level, level),
        "categories": _categories(row.categories),
        "address": row.address,
        "phone": row.phone,
        "phone_tel": tel_uri(row.phone),
        "opening_hours": row.opening_hours,
        "lon": row.lon,
        "lat": row.lat,
        "demo": bool(row.demo),
        "teams": [{"team_id": t.team_id, "name": t.name, "categories": _categories(t.categories)}
                  for t in teams],
        "activities": [
            {"id": a.id, "title": a.title, "category": a.category,
             "category_name": _ZH.get(a.category, a.category), "starts_at": as_utc(a.starts_at),
             "ends_at": as_utc(a.ends_at), "capacity": a.capacity, "confirmed": a.confirmed,
             "spaces_left": max(a.capacity - a.confirmed, 0)}
            for a in activities
        ],
        "navigation": links(row.lon, row.lat, name=row.name, region=district.name),
    }
