"""What the practice map page fetches: the page itself, its basemap, positions and grid cells."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from api.services.analysis import analysis_for, analysis_of
from api.services.coverage import district_coverage
from api.services.sites import sites_geojson
from geo import CATEGORIES, District
from maps.basemap import district_basemap
from maps.page import build_page

_ZH = {c.code: c.name for c in CATEGORIES}


@dataclass(frozen=True)
class Body:
    """A response body built once, kept plain and gzip-compressed."""

    raw: bytes
    gz: bytes
    etag: str
    media_type: str


def _encode(media_type: str, build: Callable[[], bytes]) -> Callable[[], Body]:
    def make() -> Body:
        raw = build()
        return Body(raw=raw, gz=gzip.compress(raw, compresslevel=6),
                    etag=f'"{hashlib.sha256(raw).hexdigest()[:32]}"', media_type=media_type)

    return make


def page_body(district: District) -> Body:
    """Return the map page of a district (HTML), built once per registry version."""
    return analysis_of(district).once("page_body", _encode(
        "text/html; charset=utf-8", lambda: build_page(district).encode("utf-8")))


def basemap_body(district: District) -> Body:
    """Return the offline vector basemap of a district (JSON: layer → FeatureCollection).

    Built from the district's OSM data only, so once per loaded district: a registry edit
    keeps it.
    """

    def build() -> bytes:
        layers = district_basemap(district).layers()
        layers_out: dict[str, Any] = dict(layers)
        layers_out["attribution"] = district.meta["attribution"]
        return json.dumps(layers_out, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    return analysis_for(district).once("basemap_body", _encode("application/json", build))


def sites_body(district: District) -> Body:
    """Return the positions as the map shows them (JSON), built once per registry version.

    See :func:`map_sites`.
    """
    return analysis_of(district).once("sites_body", _encode(
        "application/json", lambda: json.dumps(map_sites(district), ensure_ascii=False,
                                               separators=(",", ":")).encode("utf-8")))


def map_sites(district: District) -> dict[str, Any]:
    """Every practice position with what the map's popups show.

    The features of ``GET /sites`` plus ``category_names`` (zh-CN), ``team_names`` and
    ``opening_hours`` (``null`` where unknown: the OSM extract records none).
    """
    fc = sites_geojson(district)
    teams = district.teams
    names = teams.groupby("site_id")["name"].apply(list).to_dict() if len(teams) else {}
    hours: dict[str, Any] = {}
    if "opening_hours" in district.positions:
        hours = dict(zip(district.positions["site_id"], district.positions["opening_hours"],
                         strict=True))
    for f in fc["features"]:
        props = f["properties"]
        sid = props["site_id"]
        props["category_names"] = [_ZH.get(c, c) for c in props.get("categories") or []]
        props["team_names"] = [str(n) for n in names.get(sid, [])]
        value = hours.get(sid)
        props["opening_hours"] = str(value) if value is not None and pd.notna(value) and str(
            value).strip() else None
    return fc


def coverage_cells(district: District, *, minutes: float = 15.0) -> dict[str, Any]:
    """Grid cells (H3) with the walking minutes to their nearest position, as GeoJSON."""
    cov = district_coverage(district, minutes=minutes)
    cells = district.cells.set_index("cell_id")
    joined = cells.join(cov.cells[["walk_minutes", "nearest_site", "covered"]])
    site_names = dict(zip(district.positions["site_id"], district.positions["name"], strict=True))
    features = []
    for cid, row in joined.iterrows():
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        ring = np.round(np.asarray(geom.exterior.coords), 5).tolist()
        wm = float(row["walk_minutes"])
        site = row["nearest_site"] if isinstance(row["nearest_site"], str) else None
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {
                "cell_id": str(cid),
                "walk_minutes": round(wm, 1) if math.isfinite(wm) else None,
                "nearest_site": site,
                "nearest_name": site_names.get(site) if site else None,
                "covered": bool(row["covered"]),
            },
        })
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "district": district.name,
            "minutes": minutes,
            "count": len(features),
            "covered_cell_share": round(cov.covered_cell_share(), 4),
            "demo": bool(district.meta.get("demo_registry", True)),
            "attribution": district.meta["attribution"],
        },
    }
