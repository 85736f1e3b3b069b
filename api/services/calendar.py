"""Write activities as an iCalendar feed (RFC 5545) that any calendar app reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from icalendar import Calendar, Event, vGeo

from api.storage.models import utcnow

#: The product id calendar apps show for the feed.
PRODID = "-//practice-circle//新时代文明实践活动//ZH"


def activities_calendar(items: Iterable[dict[str, Any]], *, name: str) -> bytes:
    """Make a calendar of activities as :func:`api.services.activities.activity_public` gives.

    Each event carries a stable UID (``activity-<id>@practice-circle``), its window in UTC, the
    position's name and address as the location and its WGS84 point as ``GEO``.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Asia/Shanghai")
    stamp = utcnow()
    for item in items:
        event = Event()
        event.add("uid", f"activity-{item['id']}@practice-circle")
        event.add("dtstamp", stamp)
        event.add("dtstart", item["starts_at"])
        event.add("dtend", item["ends_at"])
        event.add("summary", item["title"])
        where = " ".join(p for p in (item["site_name"], item.get("address")) if p)
        event.add("location", where)
        event.add("geo", vGeo((item["lat"], item["lon"])))
        event.add("categories", [item["category_name"]])
        lines = [item["description"]] if item["description"] else []
        if item.get("theme"):
            lines.append(f"本月主题：{item['theme']}")
        lines.append(f"名额 {item['capacity']}，已报名 {item['confirmed']}")
        event.add("description", "\n".join(lines))
        if item["cancelled"]:
            event.add("status", "CANCELLED")
        cal.add_component(event)
    return cal.to_ical()
