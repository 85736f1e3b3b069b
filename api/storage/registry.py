"""Read a district's registry (its open positions and their teams) from the database.

The database is the one home of the registry: coverage, gaps, siting, matching, the map and the
dispatch all read what :func:`read_registry` returns. ``registry_versions`` holds a counter per
district that every change bumps (:func:`bump_version`, in the changing transaction), so a
reader compares one integer to know whether its copy is current.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from api.storage.models import Position, RegistryVersion, Team
from geo.registry import LEVELS, POSITION_COLUMNS, TEAM_COLUMNS

#: What the registry adds to the columns the analysis uses.
OFFICE_COLUMNS = ("address", "opening_hours", "phone", "source")


@dataclass(frozen=True)
class Registry:
    """A district's open positions and their teams at one registry version."""

    district: str
    version: int
    positions: gpd.GeoDataFrame
    teams: pd.DataFrame


def registry_version(conn: Connection | Session, district: str) -> int:
    """Return the district's registry version (0 when it was never seeded)."""
    value = conn.scalar(
        select(RegistryVersion.version).where(RegistryVersion.district == district)
    )
    return int(value or 0)


def bump_version(session: Session, district: str) -> int:
    """Increment the district's registry version in the current transaction; return it."""
    session.execute(
        update(RegistryVersion).where(RegistryVersion.district == district)
        .values(version=RegistryVersion.version + 1)
    )
    return registry_version(session, district)


def read_registry(session: Session, district: str) -> Registry:
    """Read the open positions of a district and the teams seated at them.

    Positions come back with the columns of :data:`geo.registry.POSITION_COLUMNS` (what the
    analysis reads) plus :data:`OFFICE_COLUMNS`, as WGS84 points; teams with
    :data:`geo.registry.TEAM_COLUMNS` (``category`` holds the team's category codes).
    """
    version = registry_version(session, district)
    # Plain columns only (no geometry): reading needs no spatial extension (see plain_session).
    rows = session.execute(
        select(Position.site_id, Position.level, Position.name, Position.osm_id, Position.kind,
               Position.parent_id, Position.categories, Position.demo, Position.address,
               Position.opening_hours, Position.phone, Position.source, Position.lon,
               Position.lat)
        .where(Position.district == district, Position.active.is_(True))
        .order_by(Position.site_id)
    ).all()
    records = [
        {
            "site_id": p.site_id, "level": str(p.level),
            "level_zh": LEVELS.get(str(p.level), str(p.level)), "name": p.name,
            "osm_id": p.osm_id, "kind": p.kind, "parent_id": p.parent_id,
            "categories": p.categories, "demo": bool(p.demo), "address": p.address,
            "opening_hours": p.opening_hours, "phone": p.phone, "source": p.source,
            "lon": p.lon, "lat": p.lat,
        }
        for p in rows
    ]
    frame = pd.DataFrame(records, columns=[*POSITION_COLUMNS[:-1], *OFFICE_COLUMNS, "lon", "lat"])
    # Text columns as strings with missing values, never all-None object columns (GDAL's
    # GeoPackage writer crashes on those in `export`).
    frame = frame.astype({c: "string" for c in ("osm_id", "kind", "parent_id", *OFFICE_COLUMNS)})
    positions = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
        crs="EPSG:4326",
    )
    open_ids = set(positions["site_id"])
    teams = pd.DataFrame(
        [
            {"team_id": t.team_id, "name": t.name, "category": t.categories,
             "site_id": t.site_id, "capacity": int(t.capacity), "active": bool(t.active),
             "demo": bool(t.demo)}
            for t in session.execute(
                select(Team.team_id, Team.name, Team.categories, Team.site_id, Team.capacity,
                       Team.active, Team.demo)
                .where(Team.district == district).order_by(Team.team_id)
            )
            if t.site_id in open_ids
        ],
        columns=list(TEAM_COLUMNS),
    )
    return Registry(district=district, version=version, positions=positions, teams=teams)
