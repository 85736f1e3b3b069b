"""Practice positions as GeoJSON."""

from __future__ import annotations

import json
from typing import Any

from geo import District
from geo.categories import category
from geo.coverage import offered_categories
from geo.registry import LEVELS


class InvalidLevelError(ValueError):
    """A position level that is not center, township, community or site."""


def sites_geojson(
    district: District, *, level: str | None = None, category_code: str | None = None
) -> dict[str, Any]:
    """Return the district's practice positions as a GeoJSON FeatureCollection."""
    pos = district.positions
    if level:
        if level not in LEVELS:
            msg = f"unknown level {level!r}; valid levels: {', '.join(LEVELS)}"
            raise InvalidLevelError(msg)
        pos = pos[pos["level"] == level]
    if category_code:
        category(category_code)
        offered = offered_categories(pos, district.teams, categories=[category_code])
        pos = pos[offered[category_code].to_numpy(dtype=bool)]
    teams = district.teams.groupby("site_id")["team_id"].apply(list).to_dict()
    pos = pos.assign(
        categories=pos["categories"].str.split(","),
        teams=pos["site_id"].map(lambda s: teams.get(s, [])),
    )
    fc: dict[str, Any] = json.loads(pos.to_json(drop_id=True))
    fc["properties"] = {
        "district": district.name,
        "count": len(pos),
        "demo": bool(pos["demo"].astype(bool).any()) if len(pos) else False,
        "note": ("含示例数据（demo=true 的阵地由 OSM 真实地点按固定规则生成，非官方名录）"
                 if len(pos) and bool(pos["demo"].astype(bool).any()) else ""),
        "attribution": district.meta["attribution"],
    }
    return fc
