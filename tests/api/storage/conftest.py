"""Fixtures of the storage tests: a brand-new, empty database of each backend per test.

PostGIS comes from ``scripts/postgres.sh start NAME`` (a new database on the throwaway cluster for
each test, dropped afterwards). If the script fails, the PostGIS tests fail: they are skipped only
when ``PRACTICE_CIRCLE_SKIP_POSTGIS=1``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from api.storage.session import get_engine
from tests.api.dispatch.helpers import drop_postgres_database, postgres_script

BACKENDS = ["sqlite", "postgis"]
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[None]:
    """Make sure the throwaway cluster runs; stop it afterwards if it was not running before."""
    if os.environ.get("PRACTICE_CIRCLE_SKIP_POSTGIS") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_POSTGIS=1")
    was_running = postgres_script("status").returncode == 0
    yield
    if not was_running:
        postgres_script("stop")


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[str]:
    """The URL of a database nothing has touched yet (PostGIS: only the extension created)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('empty') / 'practice.db'}"
        return
    request.getfixturevalue("postgres_cluster")
    res = postgres_script("start", f"pc_storage_{os.getpid()}_{next(_names)}")
    if res.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed ({res.returncode}):\n{res.stderr}")
    url = res.stdout.strip().splitlines()[-1]
    yield url
    get_engine(url).dispose()
    drop_postgres_database(url)


@pytest.fixture
def backend(empty_url: str) -> str:
    return "sqlite" if empty_url.startswith("sqlite") else "postgis"
