"""``build --all`` and ``coverage --all`` on Dask: a real scheduler and workers, and a LocalCluster.

The districts are two small real imports (Beijing Haidian, Shenzhen Longgang) and a copy of one
whose cache is damaged. The workers run in another directory, with no ``PRACTICE_CIRCLE_*``
variables and another home: they can only know the cache and the database from the task.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from typer.testing import CliRunner

import data.loaders
from geo import import_osm

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "api.cli"]
DASK = str(Path(sys.executable).with_name("dask"))
LONGGANG_OSM = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "osm" / "shenzhen_longgang"
    / "longgang_2019.osm"
)
GOOD = ("海淀学清", "龙岗")
BROKEN = "坏区"


def start_cli(*args: str, cache: Path, db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache),
           "PRACTICE_CIRCLE_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "160"}
    env.pop("PRACTICE_CIRCLE_DASK_SCHEDULER", None)
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(*args: str, cache: Path, db: Path) -> subprocess.CompletedProcess[str]:
    return finish(start_cli(*args, cache=cache, db=db))


@pytest.fixture(scope="module")
def batch_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with two imported districts and a third whose edges file is cut short."""
    if not LONGGANG_OSM.is_file():
        pytest.skip(f"needs the shared Longgang extract {LONGGANG_OSM}")
    cache = tmp_path_factory.mktemp("batch-cache")
    import_osm(data.loaders.HAIDIAN_OSM, GOOD[0], cache_dir=cache)
    import_osm(LONGGANG_OSM, GOOD[1], cache_dir=cache)
    broken = cache / "districts" / BROKEN
    shutil.copytree(cache / "districts" / GOOD[1], broken)
    edges = broken / "edges.parquet"
    edges.write_bytes(edges.read_bytes()[: edges.stat().st_size // 2])
    return cache


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], *, count: int = 1) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text(errors="replace").count(text) >= count:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"no {text!r} in {path}:\n{path.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``dask scheduler`` and two ``dask worker`` processes on loopback; its address."""
    work = tmp_path_factory.mktemp("dask-cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICE_CIRCLE_")}
    env["HOME"] = str(work)  # no default cache to fall back on
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen([DASK, *args], stdout=out, stderr=subprocess.STDOUT,
                                    cwd=work, env=env, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        info = work / "scheduler.json"
        sched = start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", str(info)], work / "scheduler.log")
        _wait_for(work / "scheduler.log", "Scheduler at:", sched)
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                   "--no-dashboard", "--local-directory", str(work / f"w{i}")],
                  work / f"worker{i}.log")
        _wait_for(work / "scheduler.log", "Register worker", sched, count=2)
        yield address
    finally:
        for proc in procs:  # each in its own session: end its nanny and worker with it
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def on_scheduler(
    batch_cache: Path, scheduler: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``coverage --all --json --out`` through the scheduler, on a database never used before."""
    out = tmp_path_factory.mktemp("merged") / "all.gpkg"
    db = batch_cache / "scheduler.db"
    res = run("coverage", "--all", "--json", "--scheduler", scheduler, "--out", str(out),
              cache=batch_cache, db=db)
    return {"res": res, "out": out, "db": db}


@pytest.fixture(scope="module")
def single_runs(batch_cache: Path, on_scheduler: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``coverage --district NAME --json`` for each good district (after the batch seeded)."""
    procs = {name: start_cli("coverage", "--district", name, "--json", cache=batch_cache,
                             db=on_scheduler["db"]) for name in GOOD}
    runs = {}
    for name, proc in procs.items():
        res = finish(proc)
        assert res.returncode == 0, res.stderr
        runs[name] = json.loads(res.stdout)
    return runs


def _by_name(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["district"]: s for s in out["districts"]}


def test_coverage_all_on_a_scheduler_equals_single_runs(
    on_scheduler: dict[str, Any], single_runs: dict[str, dict[str, Any]]
) -> None:
    res = on_scheduler["res"]
    assert res.returncode == 1, res.stderr  # one district failed
    out = json.loads(res.stdout)
    assert _by_name(out) == single_runs
    assert [f["district"] for f in out["failed"]] == [BROKEN]
    assert "parquet" in out["failed"][0]["error"].lower()
    assert f"failed: {BROKEN}" in res.stderr and "1 of 3 district(s) failed" in res.stderr
    assert "Dask scheduler tcp://127.0.0.1:" in res.stderr


def test_merged_geopackage_has_every_district(
    on_scheduler: dict[str, Any], single_runs: dict[str, dict[str, Any]]
) -> None:
    out = on_scheduler["out"]
    layers = dict(pyogrio.list_layers(out).tolist())
    assert set(layers) == {"districts", "nodes", "edges", "sites", "cells"}
    cells = gpd.read_file(out, layer="cells")
    nodes = gpd.read_file(out, layer="nodes")
    summary = gpd.read_file(out, layer="districts").set_index("district")
    assert set(summary.index) == set(GOOD)
    for name, s in single_runs.items():
        mine = cells[cells["district"] == name]
        assert len(mine) == s["cells"]
        assert mine["covered"].mean() == pytest.approx(s["covered_cell_share"], abs=1e-4)
        assert (nodes["district"] == name).sum() == s["nodes"]
        assert summary.loc[name, "f15"] == pytest.approx(s["residents"]["f15"])
        assert summary.loc[name].geometry.contains(mine.union_all().centroid)


def test_coverage_all_on_a_local_cluster_equals_single_runs(
    batch_cache: Path, single_runs: dict[str, dict[str, Any]]
) -> None:
    # One worker process: the machine's cores are the scheduler test's workers' already.
    res = run("coverage", "--all", "--json", "--workers", "1", cache=batch_cache,
              db=batch_cache / "local.db")
    assert res.returncode == 1, res.stderr
    assert "LocalCluster of 1 worker process" in res.stderr
    out = json.loads(res.stdout)
    assert _by_name(out) == single_runs
    assert [f["district"] for f in out["failed"]] == [BROKEN]


def test_build_all_seeds_every_registry(batch_cache: Path, scheduler: str) -> None:
    res = run("build", "--all", "--json", "--scheduler", scheduler, cache=batch_cache,
              db=batch_cache / "build.db")
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    rows = _by_name(out)
    assert set(rows) == set(GOOD)
    for name, row in rows.items():
        folder = batch_cache / "districts" / name
        # The counts come from the database the workers seeded: compare them with the cache.
        assert row["positions"] == len(gpd.read_parquet(folder / "positions.parquet"))
        assert row["nodes"] == json.loads((folder / "meta.json").read_text())["nodes"]
        assert (row["source"], row["action"], row["registry_version"]) == ("imported", "cached", 1)
    assert [f["district"] for f in out["failed"]] == [BROKEN]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coverage", "--all", "--district", "龙岗"], "--all and --district exclude each other"),
        (["coverage", "--scheduler", "tcp://127.0.0.1:9"], "go with --all"),
        (["build"], "give --district NAME or --all"),
        (["build", "--all", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask"),
    ],
)
def test_batch_usage_errors_exit_2(
    args: list[str], message: str, batch_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.cli import app

    monkeypatch.setattr("api.services.batch.CONNECT_TIMEOUT_S", 2)
    res = CliRunner().invoke(app, [*args, "--cache", str(batch_cache)],
                             env={"PRACTICE_CIRCLE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_build_one_district_in_process(batch_cache: Path, tmp_path: Path) -> None:
    from api.cli import app

    db = f"sqlite:///{tmp_path}/one.db"
    res = CliRunner().invoke(app, ["build", "--district", GOOD[0], "--json", "--cache",
                                   str(batch_cache), "--database-url", db])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["districts"]
    positions = gpd.read_parquet(batch_cache / "districts" / GOOD[0] / "positions.parquet")
    assert (row["district"], row["action"], row["registry_version"]) == (GOOD[0], "cached", 1)
    assert row["positions"] == len(positions)
    res = CliRunner().invoke(app, ["build", "--district", "不存在区", "--cache", str(batch_cache),
                                   "--database-url", db])
    assert res.exit_code == 2
    assert "unknown district '不存在区'" in res.output and GOOD[1] in res.output
