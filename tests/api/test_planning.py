"""Planning analytics through the CLI and the API, as a planner runs them."""

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

CLI = [sys.executable, "-m", "api.cli"]


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache), "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def client(cache_dir: Path) -> Iterator[TestClient]:
    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        yield c


def test_recommendation_holds_when_rechecked_with_extra_sites(cache_dir: Path,
                                                              tmp_path: Path) -> None:
    picks_file = tmp_path / "picks.geojson"
    res = run("recommend", "--add", "3", "--json", "--out", str(picks_file), cache=cache_dir)
    assert res.returncode == 0, res.stderr
    picks = json.loads(res.stdout)
    claimed = picks["properties"]["final_f15"]
    baseline = picks["properties"]["baseline_f15"]
    assert claimed > baseline
    for f in picks["features"]:
        assert f["properties"]["osm_id"] and f["properties"]["new_residents"] > 0
    base_run = run("coverage", "--json", cache=cache_dir)
    extra_run = run("coverage", "--json", "--extra-sites", str(picks_file), cache=cache_dir)
    assert base_run.returncode == 0, base_run.stderr
    assert extra_run.returncode == 0, extra_run.stderr
    before, after = json.loads(base_run.stdout), json.loads(extra_run.stdout)
    assert before["residents"]["f15"] == pytest.approx(baseline, abs=1e-4)
    assert after["residents"]["f15"] == pytest.approx(claimed, abs=1e-4)


def test_by_category_json_has_every_category(cache_dir: Path) -> None:
    res = run("coverage", "--by-category", "--json", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["by_category"]
    assert [r["category"] for r in rows] == list(geo.CATEGORY_CODES)
    overall = json.loads(res.stdout)["residents"]["f15"]
    assert all(0 <= r["f15"] <= overall + 1e-9 for r in rows)


def test_elderly_and_wheelchair_cover_less(cache_dir: Path) -> None:
    shares = {
        p: json.loads(run("coverage", "--json", "--profile", p, cache=cache_dir).stdout)
        ["residents"]["f15"]
        for p in ("standard", "elderly", "wheelchair")
    }
    assert shares["wheelchair"] < shares["elderly"] < shares["standard"]


def test_gaps_cli_matches_api(cache_dir: Path, client: TestClient, tmp_path: Path) -> None:
    out = tmp_path / "gaps.geojson"
    res = run("gaps", "--category", "legal", "--out", str(out), cache=cache_dir)
    assert res.returncode == 0, res.stderr
    cli = json.loads(out.read_text())
    api = client.get("/gaps", params={"category": "legal"}).json()
    # Residents are a relative index here, and the answer says so.
    assert "not a head count" in api["properties"]["population_unit"]
    assert api["properties"]["population_method"].startswith("estimate")
    assert cli["properties"]["population_unit"] == api["properties"]["population_unit"]
    assert len(cli["features"]) == len(api["features"]) > 0
    res_cli = [f["properties"]["residents"] for f in cli["features"]]
    assert res_cli == sorted(res_cli, reverse=True)
    assert res_cli == pytest.approx([f["properties"]["residents"] for f in api["features"]])


def test_service_areas_and_recommendations_routes(client: TestClient,
                                                  district: geo.District) -> None:
    areas = client.get("/service-areas").json()
    assert len(areas["features"]) == len(district.positions)
    assert areas["properties"]["covered_area_km2"] > 0
    rec = client.get("/recommendations", params={"add": 2}).json()
    assert len(rec["features"]) == 2  # 118 candidates: two can always be added
    gains = [f["properties"]["new_residents"] for f in rec["features"]]
    assert all(g > 0 for g in gains)
    assert rec["properties"]["final_f15"] > rec["properties"]["baseline_f15"]


def test_coverage_categories_route(client: TestClient) -> None:
    body = client.get("/coverage/categories", params={"profile": "elderly"}).json()
    assert body["profile"] == "elderly" and len(body["categories"]) == len(geo.CATEGORY_CODES)
    assert "estimate" in body["population_method"]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/gaps", {"category": "karaoke"}, "unknown_category"),
        ("/coverage", {"profile": "jogging"}, "unknown_profile"),
        ("/recommendations", {"add": 51}, "invalid_request"),  # bounded: at most 50
    ],
)
def test_planning_errors_are_problems(client: TestClient, path: str, params: dict[str, object],
                                      code: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code and r.json()["detail"]


def test_bad_demand_file_names_file_and_column(cache_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "people.csv"
    bad.write_text("lon,lat,households\n112.55,37.80,10\n")
    res = run("coverage", "--demand", str(bad), cache=cache_dir)
    assert res.returncode == 2
    assert "people.csv" in res.stderr and ("count" in res.stderr or "population" in res.stderr)
    assert "Traceback" not in res.stderr


def test_user_demand_file_is_used(cache_dir: Path, tmp_path: Path,
                                  district: geo.District) -> None:
    # Half the residents in a covered cell, half in an uncovered one: F15 is one half.
    cov = geo.coverage(district.network, district.positions, district.cells,
                       cell_points=geo.resident_points(district))
    cells = district.cells.set_index("cell_id").join(cov.cells)
    near = cells[cells["covered"]].iloc[0]
    far = cells[~cells["covered"]].iloc[0]
    f = tmp_path / "people.csv"
    f.write_text(f"lon,lat,population\n{near.lon},{near.lat},300\n{far.lon},{far.lat},300\n")
    out = json.loads(run("coverage", "--json", "--demand", str(f), cache=cache_dir).stdout)
    assert out["residents"]["residents"] == pytest.approx(600)
    assert out["residents"]["f15"] == pytest.approx(0.5)


def test_recommend_too_many_is_clear(cache_dir: Path) -> None:
    res = run("recommend", "--add", "10000", cache=cache_dir)
    assert res.returncode == 2 and "candidate" in res.stderr
