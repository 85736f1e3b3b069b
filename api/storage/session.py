"""Create one engine per database URL, migrate it with Alembic and hand out sessions.

SQLite runs with SpatiaLite loaded (GeoAlchemy2's ``load_spatialite``), ``journal_mode=WAL``,
``synchronous=FULL`` and a busy timeout. Every writing transaction starts with ``BEGIN
IMMEDIATE``, so writers queue for the lock up front instead of failing when a read transaction
upgrades; sessions made with ``readonly=True`` start a plain deferred transaction, which WAL lets
run beside the writer. PostgreSQL + PostGIS is reached through ``postgresql+psycopg://``;
single-statement lookups there run in autocommit.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic import command
from alembic.config import Config
from geoalchemy2 import load_spatialite
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from geo.district import ensure_private_dir

MIGRATIONS = Path(__file__).with_name("migrations")
#: Milliseconds a SQLite connection waits for the write lock before giving up.
BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK_ID = 7_155_015  # PostgreSQL advisory lock held while migrating and seeding

_engines: dict[str, Engine] = {}
_makers: dict[tuple[str, bool, bool], sessionmaker[Session]] = {}
_lock = threading.Lock()


def sqlite_module() -> ModuleType:
    """Pick the SQLite DB-API module: the standard one when it can load extensions.

    CPython built without ``--enable-loadable-sqlite-extensions`` (pyenv's default) cannot load
    SpatiaLite; ``pysqlite3-binary`` (a dependency on Linux x86-64) bundles a SQLite that can.
    """
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as pysqlite3
    except ImportError as e:
        msg = (
            "this Python's sqlite3 cannot load extensions (SpatiaLite); "
            "pip install pysqlite3-binary, or use a Python built with loadable SQLite extensions"
        )
        raise RuntimeError(msg) from e
    return pysqlite3


def _private_database_file(path: Path) -> None:
    """Make the SQLite file owner-only (0600): create it so, or tighten one of ours.

    SQLite gives its -wal and -shm files the database file's mode. The database holds
    residents' contacts, so one left group- or world-readable by an older version is tightened.
    """
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            st = p.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                p.chmod(0o600)
        except FileNotFoundError:
            continue


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        _private_database_file(Path(parsed.database))
    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
    engine = create_engine(
        url,
        module=sqlite_module(),
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=56,
        pool_timeout=60,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun by _on_begin below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        try:
            load_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")
        except Exception as e:  # the driver reports a missing module in its own ways
            msg = (
                f"cannot load SpatiaLite ({e}); on Debian: "
                "apt-get install libsqlite3-mod-spatialite"
            )
            raise RuntimeError(msg) from e

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN DEFERRED" if readonly else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str) -> Engine:
    return create_engine(url, pool_size=10, max_overflow=54, pool_timeout=60, pool_recycle=1800)


def get_engine(url: str) -> Engine:
    """Return the process-wide engine for a database URL (created on first use)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            backend = make_url(url).get_backend_name()
            if backend == "sqlite":
                engine = _sqlite_engine(url)
            elif backend == "postgresql":
                engine = _postgres_engine(url)
            else:
                msg = f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://"
                raise ValueError(msg)
            _engines[url] = engine
        return engine


def session_maker(
    url: str, *, readonly: bool = False, single_statement: bool = False
) -> sessionmaker[Session]:
    """Return a session factory for a URL.

    ``readonly`` sessions never take SQLite's write lock. ``single_statement`` sessions are
    read-only sessions for one query: on PostgreSQL they run in autocommit, which saves the
    BEGIN and ROLLBACK round trips (several statements would each see their own snapshot).
    """
    readonly = readonly or single_statement
    key = (url, readonly, single_statement)
    with _lock:
        maker = _makers.get(key)
    if maker is None:
        engine = get_engine(url)
        bind = engine
        if readonly:
            bind = bind.execution_options(readonly=True)
        if single_statement and engine.dialect.name == "postgresql":
            bind = bind.execution_options(isolation_level="AUTOCOMMIT")
        maker = sessionmaker(bind=bind, expire_on_commit=False)
        with _lock:
            maker = _makers.setdefault(key, maker)
    return maker


def alembic_config(connection: Connection | None = None) -> Config:
    """Make an Alembic configuration for the bundled migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def lock_for_migration(conn: Connection) -> None:
    """Serialize migrating and seeding between processes (SQLite: BEGIN IMMEDIATE does it)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")


def migrate(url: str) -> None:
    """Upgrade the database to the newest revision in one transaction."""
    with get_engine(url).begin() as conn:
        lock_for_migration(conn)
        command.upgrade(alembic_config(conn), "head")


def dispose_all() -> None:
    """Close every pooled connection (tests and benchmarks between servers)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
        _makers.clear()
    for engine in engines:
        engine.dispose()


_plain: dict[str, Engine] = {}


def plain_session(url: str) -> Session:
    """Return a session for reading plain columns, without loading SpatiaLite (SQLite).

    A process that also writes GeoPackages (``practice-circle export``) must not load
    SpatiaLite: its system SQLite clashes with GDAL's and crashes the writer. PostgreSQL needs
    nothing loaded, so its usual engine serves.
    """
    if make_url(url).get_backend_name() != "sqlite":
        return session_maker(url, readonly=True)()
    with _lock:
        engine = _plain.get(url)
        if engine is None:
            engine = create_engine(
                url, module=sqlite_module(),
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            )
            _plain[url] = engine
    return Session(bind=engine)
