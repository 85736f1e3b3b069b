"""Fixtures of the API tests.

The database fixtures (``postgis_url``, ``db_url``, ``db``, ``actors``, ``app_client``,
``client``, ``backend``) are parametrized over SQLite + SpatiaLite and PostgreSQL + PostGIS and
serve every module under ``tests/api`` without imports; a module may override one by defining a
fixture of the same name. :func:`running_app` runs the app on a database of the test's own.

PostGIS comes from ``scripts/postgres.sh start`` (run once per session, with a database of its
own that is dropped afterwards). If the script fails, the PostGIS tests fail: they are skipped only
when ``PRACTICE_CIRCLE_SKIP_POSTGIS=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import geo
from api.storage.seed import prepare_database
from api.storage.session import dispose_all
from tests.api.dispatch.helpers import (
    Actors,
    drop_postgres_database,
    postgres_script,
    reset,
)

BACKENDS = ["sqlite", "postgis"]


@contextmanager
def running_app(
    db_url: str, *, customize: Callable[[FastAPI], None] | None = None,
    raise_server_exceptions: bool = True,
) -> Iterator[TestClient]:
    """Run the real app (lifespan included) on ``db_url``, as ``PRACTICE_CIRCLE_DATABASE_URL``.

    The variable holds for the life of the client (the app reads its settings per request)
    and is restored afterwards; ``customize`` may add routes before the app starts.
    """
    from api.main import create_app
    from api.settings import get_settings

    old = os.environ.get("PRACTICE_CIRCLE_DATABASE_URL")
    os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = db_url
    get_settings.cache_clear()
    try:
        app = create_app()
        if customize is not None:
            customize(app)
        with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
            yield client
    finally:
        if old is None:
            os.environ.pop("PRACTICE_CIRCLE_DATABASE_URL", None)
        else:
            os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = old
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """A fresh database on the project's throwaway PostgreSQL + PostGIS cluster."""
    if os.environ.get("PRACTICE_CIRCLE_SKIP_POSTGIS") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_POSTGIS=1")
    was_running = postgres_script("status").returncode == 0
    res = postgres_script("start", f"pc_test_{os.getpid()}")
    if res.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed ({res.returncode}):\n{res.stderr}")
    url = res.stdout.strip().splitlines()[-1]
    yield url
    dispose_all()
    drop_postgres_database(url)
    if not was_running:
        postgres_script("stop")


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    district: geo.District,
) -> str:
    """A migrated and seeded database of each backend (one per session)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'practice.db'}"
    else:
        url = request.getfixturevalue("postgis_url")
    prepare_database(url, district)
    return url


@pytest.fixture
def db(db_url: str, district: geo.District) -> str:
    """The backend's database, emptied of users, requests and test teams."""
    reset(db_url, district)
    return db_url


@pytest.fixture
def actors(db: str, district: geo.District) -> Actors:
    return Actors(db, district)


@pytest.fixture(scope="session")
def app_client(db_url: str, cache_dir: Path) -> Iterator[TestClient]:
    """The real app (lifespan included) on the backend's database."""
    from api.deps import settings_dep
    from api.main import create_app
    from api.settings import Settings, get_settings

    old = os.environ.get("PRACTICE_CIRCLE_DATABASE_URL")
    os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = db_url
    # Tests escalate overdue orders themselves, at a time of their choosing (now=).
    old_poll = os.environ.get("PRACTICE_CIRCLE_ESCALATION_POLL_S")
    os.environ["PRACTICE_CIRCLE_ESCALATION_POLL_S"] = "0"
    # One app serves every module here, all from one client address: its in-memory limiter
    # would count the whole session's writes as one client's. The limits have their own
    # tests (test_security.py, test_signin.py), each with an app of its own.
    old_limits = os.environ.get("PRACTICE_CIRCLE_RATE_LIMIT_ENABLED")
    os.environ["PRACTICE_CIRCLE_RATE_LIMIT_ENABLED"] = "false"
    get_settings.cache_clear()
    try:
        settings = Settings()
        app = create_app()
        app.dependency_overrides[settings_dep] = lambda: settings
        client = TestClient(app)
        client.__enter__()
    finally:
        if old is None:
            os.environ.pop("PRACTICE_CIRCLE_DATABASE_URL", None)
        else:
            os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = old
        if old_poll is None:
            os.environ.pop("PRACTICE_CIRCLE_ESCALATION_POLL_S", None)
        else:
            os.environ["PRACTICE_CIRCLE_ESCALATION_POLL_S"] = old_poll
        if old_limits is None:
            os.environ.pop("PRACTICE_CIRCLE_RATE_LIMIT_ENABLED", None)
        else:
            os.environ["PRACTICE_CIRCLE_RATE_LIMIT_ENABLED"] = old_limits
        get_settings.cache_clear()
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def client(app_client: TestClient, db: str) -> TestClient:
    """The app on an emptied database."""
    return app_client


@pytest.fixture
def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgis"
