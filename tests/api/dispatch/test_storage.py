"""Storage on both backends: migrations, seeding, geometry, SQLite settings, hashed tokens."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

import geo
from api.services.accounts import authenticate, create_user, hash_token
from api.services.dispatch_errors import NotFoundError, UnauthorizedError
from api.storage.models import Base, Position, Team, User
from api.storage.seed import prepare_database, seed_district
from api.storage.session import alembic_config, get_engine, migrate, session_maker


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Compare only our tables (SpatiaLite and PostGIS keep their own beside them)."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in Base.metadata.tables


def test_migration_matches_models_and_is_idempotent(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(db_url)  # again: nothing to do
    names = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= names
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
        ctx = MigrationContext.configure(conn, opts={"include_object": _ours})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_seed_once_with_geometry(db_url: str, district: geo.District) -> None:
    prepare_database(db_url, district)
    with get_engine(db_url).begin() as conn:
        assert seed_district(conn, district) == 0  # already there
    with session_maker(db_url)() as s:
        n_pos = s.scalar(select(func.count()).select_from(Position)
                         .where(Position.district == district.name))
        n_demo = s.scalar(select(func.count()).select_from(Team).where(Team.demo.is_(True)))
        assert n_pos == len(district.positions) and n_demo == len(district.teams)
        rows = s.execute(
            select(Position.site_id, Position.lon, Position.lat, func.ST_X(Position.geom),
                   func.ST_Y(Position.geom), func.ST_SRID(Position.geom))
        ).all()
    for _, lon, lat, x, y, srid in rows:
        assert (x, y, srid) == pytest.approx((lon, lat, 4326))
    pos = district.positions.set_index("site_id")
    first = rows[0]
    assert pos.loc[first[0]].geometry.x == pytest.approx(first[1])


def test_spatial_query_on_both_backends(db_url: str, district: geo.District) -> None:
    x0, y0 = district.positions.geometry.x.median(), district.positions.geometry.y.median()
    box = f"POLYGON(({x0} {y0}, {x0 + 1} {y0}, {x0 + 1} {y0 + 1}, {x0} {y0 + 1}, {x0} {y0}))"
    with session_maker(db_url, readonly=True)() as s:
        n = s.scalar(select(func.count()).select_from(Position).where(
            func.ST_Intersects(Position.geom, func.ST_GeomFromText(box, 4326))))
    g = district.positions.geometry
    expected = int(np.sum((g.x >= x0) & (g.y >= y0)))
    assert n == expected and 0 < n < len(g)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_is_wal_full_sync_with_spatialite(db_url: str) -> None:
    with get_engine(db_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("SELECT spatialite_version()").scalar()
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_tokens_are_stored_hashed(db: str, district: geo.District) -> None:
    team_id = str(district.teams["team_id"].iloc[0])
    with session_maker(db)() as s:
        user, token = create_user(s, role="team", name="队长", team_id=team_id)
        s.commit()
        stored = s.scalar(select(User.token_hash).where(User.id == user.id))
        assert stored == hash_token(token) and token not in stored
        assert authenticate(s, token).id == user.id
        with pytest.raises(UnauthorizedError, match="令牌无效"):
            authenticate(s, token + "x")
        with pytest.raises(ValueError, match="--team"):
            create_user(s, role="resident", name="x", team_id=team_id)
        with pytest.raises(ValueError, match="unknown role"):
            create_user(s, role="boss", name="x")
        with pytest.raises(NotFoundError):
            create_user(s, role="team", name="x", team_id="no-such-team")
