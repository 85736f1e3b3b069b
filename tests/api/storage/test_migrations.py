"""Alembic migrations and first start, on an empty SQLite + SpatiaLite and PostgreSQL + PostGIS.

* Down and up again: every revision, walked up one step at a time, then down to ``base`` and up
  to ``head`` in one go, then down one step at a time, leaves at each revision the schema the
  upgrade made (tables, columns, constraints, indexes, sequences, types, triggers and the spatial
  registry, read from the database's own catalog) and at ``base`` nothing but an empty
  ``alembic_version``; a downgrade also works on a database in use.
* Workers starting at once: processes released together on an empty database all migrate and
  seed without error, and the district is seeded exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select

import geo
from api.schemas.dispatch import CompleteBody, DispatchBody, RequestCreate, ReviewBody
from api.services import activities, attendance, ledger, registry, store, volunteers
from api.services.accounts import create_user
from api.services.dispatch import act, create_request
from api.storage.models import Base, Evidence, Position, SignInCode, Team, User
from api.storage.seed import seed_district
from api.storage.session import (
    alembic_config,
    get_engine,
    lock_for_migration,
    migrate,
    session_maker,
)
from tests.api.dispatch.helpers import HOME, ROOT, Server

OURS = frozenset(Base.metadata.tables)
Snapshot = dict[str, list[tuple[str, ...]]]


def revisions() -> list[str]:
    """Every revision id, oldest first (one line of history: no branches)."""
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, script.get_heads()
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def head() -> str:
    return revisions()[-1]


def _alembic(url: str, direction: str, target: str) -> None:
    """Upgrade or downgrade to ``target`` as :func:`api.storage.session.migrate` upgrades."""
    with get_engine(url).begin() as conn:
        lock_for_migration(conn)
        getattr(command, direction)(alembic_config(conn), target)


def current(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _rows(conn: Connection, sql: str) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in conn.exec_driver_sql(sql))


_NOT_EXTENSION = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
#: The catalog of the public schema (objects of extensions such as PostGIS left out).
PG_CATALOG = {
    "relations": f"""
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND {_NOT_EXTENSION.format(oid="c.oid")}""",
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable,
               column_default, character_maximum_length
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public'""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, last_value
        FROM pg_sequences WHERE schemaname = 'public'""",
    "types": f"""
        SELECT t.typname, t.typtype,
               (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                FROM pg_enum e WHERE e.enumtypid = t.oid)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r', 'm')
          AND {_NOT_EXTENSION.format(oid="t.oid")}""",
    "functions": f"""
        SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND {_NOT_EXTENSION.format(oid="p.oid")}""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal""",
    "geometry_columns": """
        SELECT f_table_name, f_geometry_column, coord_dimension, srid, type
        FROM geometry_columns""",
}
#: The whole SQLite schema (every table, index, trigger and view with its SQL) and SpatiaLite's
#: registry of geometry columns (spatialite_history, a log with timestamps, left out).
SQLITE_CATALOG = {
    "sqlite_master": "SELECT type, name, tbl_name, sql FROM sqlite_master",
    **{
        t: f"SELECT * FROM {t}"
        for t in ("geometry_columns", "geometry_columns_auth", "geometry_columns_statistics",
                  "geometry_columns_time", "geometry_columns_field_infos")
    },
    "sqlite_sequence": "SELECT name, seq FROM sqlite_sequence "
                       "WHERE name NOT IN ('spatialite_history', 'sql_statements_log')",
}


def snapshot(url: str) -> Snapshot:
    """Read the schema of a database from its own catalog."""
    with get_engine(url).connect() as conn:
        catalog = PG_CATALOG if conn.dialect.name == "postgresql" else SQLITE_CATALOG
        return {name: _rows(conn, sql) for name, sql in catalog.items()}


def without_alembic_version(snap: Snapshot) -> Snapshot:
    return {k: [r for r in rows if not any("alembic_version" in v for v in r)]
            for k, rows in snap.items()}


def our_tables(url: str) -> set[str]:
    with get_engine(url).connect() as conn:
        return set(OURS & set(inspect(conn).get_table_names()))


def row_counts(url: str) -> dict[str, int]:
    with get_engine(url).connect() as conn:
        return {t: int(conn.scalar(select(func.count()).select_from(Base.metadata.tables[t])) or 0)
                for t in sorted(OURS)}


def _only_ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in OURS


def model_diff(url: str) -> list[Any]:
    """What autogenerate would change to make the database match the models (nothing, we hope)."""
    with get_engine(url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": _only_ours})
        return list(compare_metadata(ctx, Base.metadata))


# ----------------------------------------------------------------------- down and up again


def test_round_trip_leaves_the_schema_a_fresh_upgrade_makes(empty_url: str) -> None:
    revs = revisions()
    blank = snapshot(empty_url)
    assert current(empty_url) is None and not our_tables(empty_url)

    made: dict[str, Snapshot] = {}
    for rev in revs:  # up one revision at a time, as a long-lived database goes
        _alembic(empty_url, "upgrade", rev)
        assert current(empty_url) == rev
        made[rev] = snapshot(empty_url)
    assert our_tables(empty_url) == OURS

    _alembic(empty_url, "downgrade", "base")
    assert current(empty_url) is None
    assert not our_tables(empty_url)
    assert without_alembic_version(snapshot(empty_url)) == blank

    migrate(empty_url)  # what the service runs at startup
    assert current(empty_url) == head()
    assert snapshot(empty_url) == made[head()]
    assert model_diff(empty_url) == []
    assert set(row_counts(empty_url).values()) == {0}

    for below in [*reversed(revs[:-1]), None]:  # down one revision at a time
        _alembic(empty_url, "downgrade", "-1")
        assert current(empty_url) == below
        if below is None:
            assert without_alembic_version(snapshot(empty_url)) == blank
        else:
            assert snapshot(empty_url) == made[below], f"after downgrading to {below}"


def test_downgrade_of_a_database_in_use(empty_url: str, district: geo.District) -> None:
    """With a row in every table (foreign keys enforced), base drops it all; upgrade starts anew."""
    migrate(empty_url)
    with get_engine(empty_url).begin() as conn:
        lock_for_migration(conn)
        assert seed_district(conn, district) == len(district.positions) + len(district.teams)
    team_id = str(district.teams.query("active and category == 'elderly'")["team_id"].iloc[0])
    with session_maker(empty_url)() as s:
        resident, _ = create_user(s, role="resident", name="张阿姨")
        dispatcher, _ = create_user(s, role="dispatcher", name="调度员")
        team, _ = create_user(s, role="team", name="队长", team_id=team_id)
        s.commit()
        made = create_request(s, district, resident, RequestCreate(
            lon=HOME[0], lat=HOME[1], category="elderly", description="代购药品",
            contact="13812341234"), idempotency_key="first")
        rid = made.body["id"]
        act(s, district, dispatcher, rid, "dispatch", DispatchBody(team_id=team_id))
        act(s, district, team, rid, "accept")
        act(s, district, team, rid, "complete", CompleteBody(hours=1.0))
        done = act(s, district, resident, rid, "review", ReviewBody(stars=5))
        # and a registry change, for its history
        registry.update_position(s, district, str(district.positions["site_id"].iloc[0]),
                                 {"opening_hours": "Mo-Fr 09:00-17:00"}, actor="管理员")
        # and a volunteer who leads the team, publishes an activity and signs up for it
        admin, _ = create_user(s, role="admin", name="管理员")
        volunteer, _ = volunteers.register(s, district, name="李志愿", phone="13912340000",
                                           id_card=None, categories=["elderly"])
        volunteers.add_member(s, district, team_id, volunteer_id=volunteer.id, leader=True,
                              actor=admin)
        leader = s.get(User, volunteer.user_id)
        assert leader is not None
        seat = s.get(Position, s.get(Team, team_id).site_id)  # type: ignore[union-attr]
        assert seat is not None
        start = datetime.now(UTC) - timedelta(minutes=10)
        activity = activities.publish(s, district, {
            "title": "敬老义剪", "category": "elderly", "site_id": seat.site_id,
            "starts_at": start, "ends_at": start + timedelta(hours=2), "capacity": 5},
            actor=leader)
        activities.sign_up(s, district, activity.id, user=leader)
        # checked in and out at the position itself, then a reward bought and picked up
        code, _ = attendance.current_code(activity.id)
        attendance.check_in(s, district, activity.id, user=leader, code=code, lon=seat.lon,
                            lat=seat.lat)
        attendance.check_out(s, district, activity.id, user=leader, code=code, lon=seat.lon,
                             lat=seat.lat)
        ledger.credit_activity(s, volunteer.id, hours=1.0, activity_id=None, team_id=None,
                               actor=leader)
        reward = store.add_reward(s, district, {"name": "环保袋", "site_id": seat.site_id,
                                                "price_points": 1, "stock": 1}, actor=admin)
        bought = store.redeem(s, district, reward.id, user=leader)
        store.pick_up(s, district, bought.code, actor=admin)
        # a photo of the service and a sign-in code (rows as their services write them)
        s.add(Evidence(request_id=rid, sha256="0" * 64, content_type="image/jpeg", bytes=1,
                       width=1, height=1, uploaded_by=team.id))
        s.add(SignInCode(phone_hash="1" * 64, code_hash="2" * 64, attempts=0,
                         expires_at=datetime.now(UTC)))
        s.commit()
    assert done.body["state"] == "reviewed"
    assert 0 not in row_counts(empty_url).values()  # a row in every table

    _alembic(empty_url, "downgrade", "base")
    assert current(empty_url) is None and not our_tables(empty_url)
    migrate(empty_url)
    assert set(row_counts(empty_url).values()) == {0}
    with get_engine(empty_url).begin() as conn:
        assert seed_district(conn, district) == len(district.positions) + len(district.teams)


# ------------------------------------------------------------------ workers starting at once


def _expect_seeded_once(url: str, district: geo.District) -> None:
    assert current(url) == head()
    counts = row_counts(url)
    assert counts["positions"] == len(district.positions)
    assert counts["teams"] == len(district.teams)
    with get_engine(url).connect() as conn:
        ids = conn.scalars(select(Position.site_id)).all()
        assert sorted(ids) == sorted(district.positions["site_id"].astype(str))
        assert conn.scalar(select(func.count()).select_from(Team).where(
            Team.district == district.name)) == len(district.teams)
    assert model_diff(url) == []


@pytest.fixture
def workers(empty_url: str, cache_dir: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Two processes at the start line: district loaded, not yet touching the database."""
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache_dir),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.api.storage.worker", empty_url],
                              cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            for pipe in (p.stdin, p.stdout, p.stderr):
                if pipe is not None and not pipe.closed:
                    pipe.close()


def test_two_workers_migrate_and_seed_an_empty_database_at_once(
    empty_url: str, district: geo.District, workers: list[subprocess.Popen[str]]
) -> None:
    assert current(empty_url) is None and not our_tables(empty_url)
    for p in workers:  # go: both start migrating within microseconds of each other
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=300) for p in workers]
    for p, (out, err) in zip(workers, results, strict=True):
        assert p.returncode == 0 and out.strip() == "done", err[-3000:]
        # SpatiaLite reports a failed call (say, initialising metadata another process has just
        # initialised) on stderr without raising: nothing may be reported there either.
        assert "Traceback" not in err and "error" not in err.lower(), err[-3000:]
    _expect_seeded_once(empty_url, district)


@pytest.mark.slow
def test_uvicorn_with_two_workers_on_an_empty_database(
    empty_url: str, district: geo.District, cache_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "uvicorn.log"
    server = Server(url=empty_url, cache=cache_dir, log=log, workers=2)
    try:
        server.start()  # returns once both workers logged "Application startup complete"
        r = httpx.get(server.base + "/teams/nearest", timeout=30, params={
            "lon": HOME[0], "lat": HOME[1], "category": "elderly", "limit": 3})
        assert r.status_code == 200, r.text
        assert len(r.json()["teams"]) == 3
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    assert text.count("Application startup complete") == 2, text[-3000:]
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]
    _expect_seeded_once(empty_url, district)
