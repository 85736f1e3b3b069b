"""Generate the demo practice registry (中心/所/站/点 and teams) from real OSM places.

No public registry of civilization-practice positions exists, so every record here is **demo
data**: a real place from the OSM extract (its OSM id and name kept) given a practice role by
fixed rules and a seeded random generator, so the same input always gives the same registry.
"""

from __future__ import annotations

import zlib
from enum import StrEnum

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.categories import CATEGORIES, CATEGORY_CODES, CORE_CODES
from geo.places import PLACE_KINDS


class Level(StrEnum):
    """Levels of practice positions, from the district's one center down to sites."""

    CENTER = "center"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    SITE = "site"

    @property
    def zh(self) -> str:
        """Full zh-CN name: ``新时代文明实践中心``, ``…所``, ``…站``, ``…点``."""
        return "新时代文明实践" + self.short

    @property
    def short(self) -> str:
        """Short zh-CN name: ``中心``, ``所``, ``站`` or ``点``."""
        return _LEVEL_SHORT[self]


_LEVEL_SHORT: dict[Level, str] = {
    Level.CENTER: "中心", Level.TOWNSHIP: "所", Level.COMMUNITY: "站", Level.SITE: "点",
}
#: Level code → full zh-CN name, highest level first.
LEVELS: dict[str, str] = {lv.value: lv.zh for lv in Level}
SITE_KINDS = (
    "community_centre",
    "library",
    "school",
    "museum",
    "square",
    "park",
    "sports",
    "hospital",
)
#: Categories a kind of place naturally hosts; a seeded draw adds one or two more.
_KIND_CATEGORIES: dict[str, tuple[str, ...]] = {
    "community_centre": ("theory", "culture", "elderly", "neighbourhood"),
    "library": ("tutoring", "science", "theory"),
    "school": ("tutoring", "science"),
    "museum": ("theory", "culture", "science"),
    "square": ("culture", "health", "legal"),
    "park": ("health", "environment", "culture"),
    "sports": ("health",),
    "hospital": ("health", "assistance"),
    "residential": ("environment", "elderly", "neighbourhood", "legal"),
}
_MAX_TOWNSHIPS = 15
POSITION_COLUMNS = (
    "site_id",
    "level",
    "level_zh",
    "name",
    "osm_id",
    "kind",
    "parent_id",
    "categories",
    "demo",
    "geometry",
)
TEAM_COLUMNS = ("team_id", "name", "category", "site_id", "capacity", "active", "demo")


def district_seed(name: str, seed: int = 15) -> int:
    """Return the fixed random seed of a district's demo registry."""
    return zlib.crc32(name.encode("utf-8")) ^ seed


def _label(row: pd.Series) -> str:
    if row["name"]:
        return str(row["name"])
    return f"{PLACE_KINDS[row['kind']][0]}（OSM {row['osm_id']}，无名称）"


def _nearest(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the nearest target for each point (metric coordinates)."""
    if len(targets) == 0:
        return np.full(len(points), -1)
    tree = shapely.STRtree(targets)
    idx = tree.query_nearest(points, all_matches=False)
    out = np.full(len(points), -1)
    out[idx[0]] = idx[1]
    return out


def demo_registry(
    places: gpd.GeoDataFrame,
    area: BaseGeometry,
    *,
    district: str,
    seat: Point | None = None,
    seed: int = 15,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Give real places practice roles: a center, 所 from offices, 站 from compounds, 点 the rest.

    Parameters
    ----------
    places
        Output of :func:`geo.places.places_from_features` (WGS84).
    area
        WGS84 area the registry covers (district ∩ extract); places outside are left out.
    district
        District name, used in ids and for the seed.
    seat
        WGS84 seat point of the district government; the center is the office nearest to it.
    seed
        Base seed; the district name is mixed in so each district draws its own registry.

    Returns
    -------
    positions, teams
        ``positions``: ``site_id``, ``level``, ``level_zh``, ``name``, ``osm_id``, ``kind``,
        ``parent_id``, ``categories`` (comma-separated codes), ``demo``, point geometry.
        ``teams``: ``team_id``, ``name``, ``category``, ``site_id``, ``capacity``, ``active``,
        ``demo``.
    """
    rng = np.random.default_rng(district_seed(district, seed))
    crs = CRS.from_user_input(places.estimate_utm_crs()) if len(places) else CRS("EPSG:3857")
    pl = places.copy()
    pl["geometry"] = pl.geometry.to_crs(crs).representative_point().to_crs("EPSG:4326")
    pl = pl[pl.within(area)].sort_values(["kind", "osm_id"]).reset_index(drop=True)
    pl["label"] = pl.apply(_label, axis=1) if len(pl) else pd.Series(dtype=str)
    metric = pl.geometry.to_crs(crs).to_numpy()

    gov = pl.index[pl.kind == "government"].to_numpy()
    if len(gov) == 0:  # no office mapped: the center goes to the place nearest the seat
        gov = pl.index.to_numpy()
    if len(gov) == 0:
        empty = gpd.GeoDataFrame(
            columns=list(POSITION_COLUMNS),
            geometry="geometry",
            crs="EPSG:4326",
        )
        return empty, pd.DataFrame(columns=list(TEAM_COLUMNS))
    if seat is not None:
        seat_m = gpd.GeoSeries([seat], crs="EPSG:4326").to_crs(crs).iloc[0]
        center = int(gov[np.argmin(shapely.distance(metric[gov], seat_m))])
    else:
        center = int(gov[0])
    named_gov = [int(i) for i in gov if i != center and pl.at[i, "name"]]
    townships = named_gov[:_MAX_TOWNSHIPS]
    communities = [int(i) for i in pl.index[pl.kind == "residential"] if pl.at[i, "name"]]
    # Only named places become 点; unnamed ones (and offices) stay candidates for new sites.
    sites = [int(i) for i in pl.index[pl.kind.isin(SITE_KINDS)] if i != center and pl.at[i, "name"]]

    level = pd.Series("", index=pl.index)
    level[center] = Level.CENTER.value
    level[townships] = Level.TOWNSHIP.value
    level[communities] = Level.COMMUNITY.value
    level[sites] = Level.SITE.value
    pos = pl[level != ""].copy()
    pos["level"] = level[pos.index]
    order = {k: i for i, k in enumerate(Level)}
    pos = pos.sort_values(by="level", key=lambda s: s.map(order), kind="stable")
    prefix = {Level.CENTER: "C", Level.TOWNSHIP: "T", Level.COMMUNITY: "S", Level.SITE: "P"}
    counter: dict[str, int] = {}
    ids = []
    for lv in pos["level"]:
        counter[lv] = counter.get(lv, 0) + 1
        ids.append(f"{district}-{prefix[lv]}{counter[lv]:03d}")
    pos["site_id"] = ids

    # Parents: 所 → center, 站 → nearest 所, 点 → nearest 站 (each falls back one level up).
    pts = pos.geometry.to_crs(crs).to_numpy()
    lv = pos["level"].to_numpy()
    sid = pos["site_id"].to_numpy()
    parent = np.full(len(pos), None, dtype=object)
    ladder = {
        Level.TOWNSHIP: [Level.CENTER],
        Level.COMMUNITY: [Level.TOWNSHIP, Level.CENTER],
        Level.SITE: [Level.COMMUNITY, Level.TOWNSHIP, Level.CENTER],
    }
    for child, ups in ladder.items():
        kids = np.flatnonzero(lv == child)
        for up in ups:
            ups_idx = np.flatnonzero(lv == up)
            if len(ups_idx) and len(kids):
                parent[kids] = sid[ups_idx[_nearest(pts[kids], pts[ups_idx])]]
                break
    pos["parent_id"] = parent

    cats = []
    for level_i, kind in zip(lv, pos["kind"], strict=True):
        if level_i == Level.CENTER:
            chosen = list(CATEGORY_CODES)
        elif level_i == Level.TOWNSHIP:
            chosen = list(CORE_CODES)
        else:
            base = list(_KIND_CATEGORIES.get(kind, ()))
            extra = [c for c in CATEGORY_CODES if c not in base]
            base += list(rng.choice(extra, size=int(rng.integers(1, 3)), replace=False))
            chosen = [c for c in CATEGORY_CODES if c in base]
        cats.append(",".join(chosen))
    pos["categories"] = cats
    pos["level_zh"] = pos["level"].map(LEVELS)
    pos["demo"] = True
    pos["name"] = pos["label"]
    positions = gpd.GeoDataFrame(
        pos[list(POSITION_COLUMNS)].reset_index(drop=True),
        geometry="geometry",
        crs="EPSG:4326",
    )
    return positions, demo_teams(positions, rng)


def demo_teams(positions: gpd.GeoDataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Seat volunteer teams at the center, 所 and 站, each team serving one category."""
    zh: dict[str, str] = {c.code: c.name for c in CATEGORIES}
    rows = []
    for p in positions.itertuples():
        offered = str(p.categories).split(",")
        if p.level == Level.CENTER:
            chosen = offered
        elif p.level == Level.TOWNSHIP:
            chosen = list(rng.choice(offered, size=min(4, len(offered)), replace=False))
        elif p.level == Level.COMMUNITY:
            chosen = list(
                rng.choice(offered, size=min(int(rng.integers(1, 4)), len(offered)), replace=False)
            )
        else:
            continue
        for code in sorted(chosen, key=CATEGORY_CODES.index):
            rows.append(
                {
                    "team_id": f"{p.site_id}-{code}",
                    "name": f"{p.name}{zh[code]}志愿服务队",
                    "category": code,
                    "site_id": p.site_id,
                    "capacity": int(rng.integers(1, 4)),
                    "active": bool(rng.random() > 0.05),
                    "demo": True,
                }
            )
    return pd.DataFrame(rows, columns=list(TEAM_COLUMNS))


#: Where a position hangs in the hierarchy: the levels its parent may have, nearest first tried.
PARENT_LEVELS: dict[str, tuple[str, ...]] = {
    "center": (),
    "township": ("center",),
    "community": ("township", "center"),
    "site": ("community", "township", "center"),
}
#: The letter of each level in a site id (``小店区-S007``).
LEVEL_PREFIX: dict[str, str] = {"center": "C", "township": "T", "community": "S", "site": "P"}


def nearest_parent(
    level: str, point: Point, positions: gpd.GeoDataFrame, *, crs: CRS | str
) -> str | None:
    """Return the id of the nearest position one level up (or further up), as the demo does.

    Parameters
    ----------
    level
        Level of the position to link.
    point
        Its WGS84 location.
    positions
        Candidate parents with ``site_id``, ``level`` and WGS84 point geometry.
    crs
        A metric CRS for distances.
    """
    where = gpd.GeoSeries([point], crs="EPSG:4326").to_crs(crs).iloc[0]
    for up in PARENT_LEVELS.get(level, ()):
        ups = positions[positions["level"] == up]
        if len(ups):
            dist = ups.geometry.to_crs(crs).distance(where).to_numpy()
            return str(ups["site_id"].to_numpy()[int(np.argmin(dist))])
    return None
