"""The registry lives in the database: a change shows on the next request and in the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import geo
from api.services import registry
from api.storage.registry import read_registry, registry_version
from api.storage.session import session_maker
from tests.api.conftest import running_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('served') / 'practice.db'}"


@pytest.fixture(scope="module")
def client(cache_dir: Path, db_url: str) -> Iterator[TestClient]:
    with running_app(db_url) as c:
        yield c


def _new_place(district: geo.District) -> tuple[str, float, float]:
    """A real OSM place inside the district that is not a position yet, far from all of them."""
    taken = set(district.positions["osm_id"])
    free = district.places[~district.places["osm_id"].isin(taken)].copy()
    free = free[free.geometry.within(district.outline)]
    metric = district.network.crs_metric
    pts = free.geometry.representative_point().to_crs(metric)
    far = pts.apply(lambda p: district.positions.geometry.to_crs(metric).distance(p).min())
    best = free.loc[far.idxmax()]
    p = best.geometry.representative_point()
    return str(best["name"]), float(p.x), float(p.y)


def test_database_registry_is_what_every_answer_reads(client: TestClient, db_url: str,
                                                      district: geo.District,
                                                      cache_dir: Path) -> None:
    before = client.get("/coverage").json()
    sites_before = len(client.get("/sites").json()["features"])
    assert before["sites"] == sites_before == len(district.positions)

    name, lon, lat = _new_place(district)
    with session_maker(db_url)() as s:
        v0 = registry_version(s, district.name)
        row = registry.create_position(
            s, district, {"level": "site", "name": name, "lon": lon, "lat": lat,
                          "categories": ["elderly"]}, actor="测试管理员")
        s.commit()
        site_id = row.site_id
        assert registry_version(s, district.name) == v0 + 1
        assert row.parent_id is not None and row.parent_id.startswith(f"{district.name}-S")

    # the next request of every kind sees it: the app's own answers and the worker's
    sites = client.get("/sites").json()["features"]
    assert len(sites) == sites_before + 1
    assert any(f["properties"]["site_id"] == site_id for f in sites)
    after = client.get("/coverage").json()  # computed in a forked worker process
    assert after["sites"] == before["sites"] + 1
    assert after["covered_cell_share"] >= before["covered_cell_share"]
    nearest = client.get("/nearest", params={"lon": lon, "lat": lat, "limit": 1}).json()
    assert nearest["features"][0]["properties"]["site_id"] == site_id
    assert client.get("/map/sites").json()["properties"]["count"] == sites_before + 1

    # the CLI reads the same registry
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache_dir),
           "PRACTICE_CIRCLE_DATABASE_URL": db_url}
    res = subprocess.run([sys.executable, "-m", "api.cli", "coverage", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sites"] == before["sites"] + 1

    # closing it takes it out again, and history says who did what
    with session_maker(db_url)() as s:
        registry.close_position(s, district, site_id, actor="测试管理员")
        s.commit()
        assert [h["action"] for h in registry.history(s, district, site_id)] == [
            "create", "close"]
        assert site_id not in set(read_registry(s, district.name).positions["site_id"])
    assert client.get("/coverage").json()["sites"] == before["sites"]
    assert len(client.get("/sites").json()["features"]) == sites_before
