"""Every error is problem+json: strict district names, bounded inputs, and the catch-all 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import geo
from api import deps
from api.services.accounts import create_user
from api.storage.session import session_maker
from tests.api.conftest import running_app

PROBLEM = "application/problem+json"
FAR_AWAY = {"lon": 19.13, "lat": 0.0}  # the Gulf of Guinea: outside any district's metric zone


def _boom_route(app: FastAPI) -> None:
    @app.get("/test-only/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug the handler must not leak")


@pytest.fixture(scope="module")
def client(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app on a database of its own, plus one route that fails like a bug would."""
    db = tmp_path_factory.mktemp("errors-db") / "practice.db"
    with running_app(f"sqlite:///{db}", customize=_boom_route,
                    raise_server_exceptions=False) as c:
        with session_maker(f"sqlite:///{db}")() as s:
            _, token = create_user(s, role="resident", name="测试居民")
            s.commit()
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = r.json()
    assert body["code"] == code, body
    assert body["title"] and body["detail"] is not None
    return body


@pytest.mark.parametrize("name", ["./小店区", "../districts/小店区", "小店区/", "小店区 ", "迎泽区",
                                  "districts/../小店区", "%2e%2e"])
def test_district_must_match_a_served_one_exactly(client: TestClient, name: str,
                                                  cache_dir: Path) -> None:
    before = dict(deps._loaded)
    for path in ("/sites", "/coverage", "/leaderboard", "/map/sites"):
        body = problem(client.get(path, params={"district": name}), 404, "unknown_district")
        assert "小店区" in str(body["detail"])  # says what is served
    problem(client.get("/requests", params={"district": name}), 404, "unknown_district")
    assert deps._loaded == before  # nothing new loaded
    # nothing built or written to the cache for it
    assert not (cache_dir / "districts" / "迎泽区").exists()


def test_get_never_builds_or_seeds(client: TestClient, cache_dir: Path) -> None:
    problem(client.get("/leaderboard", params={"district": "迎泽区"}), 404, "unknown_district")
    assert "迎泽区" not in geo.cached_districts(cache_dir)
    board = client.get("/leaderboard").json()
    assert all(t["team_id"].startswith(geo.DEFAULT_DISTRICT) for t in board["teams"])


def test_long_district_name_is_a_clean_422(client: TestClient) -> None:
    problem(client.get("/sites", params={"district": "区" * 2_000}), 422, "invalid_request")


@pytest.mark.parametrize(("path", "params"), [
    ("/nearest", FAR_AWAY),
    ("/teams/nearest", {**FAR_AWAY, "category": "elderly"}),
    ("/nearest", {"lon": 20, "lat": 0}),
    ("/nearest", {"lon": -179.9, "lat": -89.9}),
])
def test_points_far_away_are_out_of_area_in_chinese(client: TestClient, path: str,
                                                    params: dict[str, object]) -> None:
    body = problem(client.get(path, params=params), 422, "out_of_area")
    assert "步行道路" in str(body["detail"])


@pytest.mark.parametrize(("path", "params"), [
    ("/requests/9223372036854775808", {}),
    ("/requests/2147483648", {}),
    ("/requests", {"offset": 2**63}),
    ("/coverage", {"walk_m_per_min": 5e-324}),
    ("/coverage", {"walk_m_per_min": 19.9}),
    ("/nearest", {"lon": 112.55, "lat": 37.80, "walk_m_per_min": 5e-324}),
    ("/coverage", {"minutes": 1e308}),
    ("/service-areas", {"minutes": 119.5}),
    ("/service-areas", {"minutes": 14}),
    ("/recommendations", {"add": 51}),
    ("/coverage/cells", {"minutes": 61}),
])
def test_bounded_inputs_are_422_before_any_work(client: TestClient, path: str,
                                                params: dict[str, object]) -> None:
    problem(client.get(path, params=params), 422, "invalid_request")


@pytest.mark.parametrize(("path", "params"), [
    ("/sites", {"category": "karaoke"}),
    ("/gaps", {"category": "karaoke"}),
    ("/coverage", {"category": "karaoke"}),
    ("/teams/nearest", {"lon": 112.5501, "lat": 37.8024, "category": "karaoke"}),
    ("/nearest", {"lon": 112.5501, "lat": 37.8024, "category": "karaoke"}),
])
def test_unknown_category_is_chinese_on_every_route(client: TestClient, path: str,
                                                    params: dict[str, object]) -> None:
    body = problem(client.get(path, params=params), 422, "unknown_category")
    assert "未知的服务类别" in str(body["detail"]) and "elderly" in str(body["detail"])


def test_unexpected_error_is_a_500_problem_with_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="practice_circle"):
        r = client.get("/test-only/boom")
    body = problem(r, 500, "internal_error")
    rid = str(body["trace_id"])
    assert len(rid) == 32 and rid in str(body["detail"]) and r.headers["X-Request-ID"] == rid
    assert "a bug" not in r.text  # the traceback stays in the log
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_method_not_allowed_is_problem_json(client: TestClient) -> None:
    r = client.delete("/sites")
    problem(r, 405, "method_not_allowed")


def test_health_and_readiness_report_the_database(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h == {"status": "ok", "database": "ok", "database_error": None}
    r = client.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["database"] == "ok"
    assert body["districts"] == [geo.DEFAULT_DISTRICT]
