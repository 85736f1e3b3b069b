"""Load a district's demo registry (中心/所/站/点 and their teams) into the database once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import make_url

from api.storage.models import Position, RegistryVersion, Team, point
from api.storage.session import get_engine, lock_for_migration, migrate
from geo import District


def seed_district(conn: Connection, district: District) -> int:
    """Insert the district's positions and teams unless it is already there.

    Returns
    -------
    int
        Number of rows written (0 when the district was seeded before).
    """
    # A district is seeded once: its registry version row says so (even with no positions).
    have = conn.scalar(
        select(func.count()).select_from(RegistryVersion)
        .where(RegistryVersion.district == district.name)
    )
    if have:
        return 0
    pos = district.positions
    rows = [
        {
            "site_id": str(r.site_id),
            "district": district.name,
            "level": str(r.level),
            "name": str(r.name),
            "parent_id": None if pd.isna(r.parent_id) else str(r.parent_id),
            "categories": str(r.categories),
            "lon": float(r.geometry.x),
            "lat": float(r.geometry.y),
            "geom": point(float(r.geometry.x), float(r.geometry.y)),
            "demo": bool(r.demo),
            "source": "demo" if bool(r.demo) else "import",
            "osm_id": None if pd.isna(getattr(r, "osm_id", None)) else str(r.osm_id),
            "kind": None if pd.isna(getattr(r, "kind", None)) else str(r.kind),
            "opening_hours": _text(getattr(r, "opening_hours", None)),
        }
        for r in pos.itertuples()
    ]
    teams = [
        {
            "team_id": str(t.team_id),
            "district": district.name,
            "name": str(t.name),
            "categories": str(t.category),
            "site_id": str(t.site_id),
            "capacity": int(t.capacity),  # type: ignore[arg-type]
            "active": bool(t.active),
            "demo": bool(t.demo),
        }
        for t in district.teams.itertuples()
    ]
    if rows:
        conn.execute(insert(Position), rows)
    if teams:
        conn.execute(insert(Team), teams)
    conn.execute(insert(RegistryVersion).values(district=district.name, version=1))
    return len(rows) + len(teams)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return None
    return str(value)


_ready: set[tuple[str, str]] = set()


def is_prepared(url: str, district: str) -> bool:
    """Tell whether this process has migrated the database and seeded the district."""
    return (url, district) in _ready


def prepare_database(url: str, district: District) -> None:
    """Migrate the database and seed the district, once per process (safe across processes)."""
    key = (url, district.name)
    if key in _ready:
        return
    migrate(url)
    with get_engine(url).begin() as conn:
        lock_for_migration(conn)
        seed_district(conn, district)
    _ready.add(key)


def is_current(url: str, district: str) -> bool:
    """Tell whether the database is at the newest revision and holds the district's registry.

    Reads only; ``False`` for a missing or unreadable database.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from api.storage.registry import registry_version
    from api.storage.session import alembic_config, plain_session

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Connecting initializes SpatiaLite in a new file: only look at one that exists.
        db = Path(parsed.database or "")
        if not parsed.database or not db.is_file() or db.stat().st_size == 0:
            return False
    try:
        with plain_session(url) as session:
            conn = session.connection()
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            if MigrationContext.configure(conn).get_current_revision() != head:
                return False
            return registry_version(conn, district) > 0
    except SQLAlchemyError:
        return False


def prepare_database_by_name(url: str, district: str, cache: str = "") -> None:
    """Load a built district from the cache and prepare the database for it (child processes)."""
    from geo.district import load_district

    prepare_database(url, load_district(district, Path(cache) if cache else None))
