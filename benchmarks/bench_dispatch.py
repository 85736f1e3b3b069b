"""Benchmark dispatch: nearest-team queries and request creation, each against /health.

Run: ``PRACTICE_CIRCLE_CACHE=... .venv/bin/python benchmarks/bench_dispatch.py [--n 300]``.
Times the nearest-team lookup in-process (the service call, and through FastAPI's TestClient) and
over HTTP (a uvicorn subprocess), and request creation over HTTP on SQLite and on PostGIS
(started with scripts/postgres.sh). Every figure is also given as a ratio to /health timed the
same way in the same run. The last line printed is one JSON object.

The goal (nearest team over HTTP within 3x /health) is reported met only when it is met on both
backends. If PostGIS could not be started the run says "PostGIS: not run", reports the goal as
not established and exits with status 1; ``--sqlite-only`` leaves PostGIS out on purpose (exit 0,
the goal still not reported met).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.services.accounts import create_account  # noqa: E402
from api.services.team_views import nearest_teams  # noqa: E402
from api.storage.seed import prepare_database  # noqa: E402
from api.storage.session import dispose_all, session_maker  # noqa: E402
from geo import DEFAULT_DISTRICT, District, get_district  # noqa: E402
from geo.district import default_cache_dir  # noqa: E402


def per_call_ms(fn: Callable[[int], Any], n: int, warmup: int = 20) -> float:
    """Median milliseconds of ``fn(i)`` over ``n`` sequential calls."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def paired_ms(
    fns: dict[str, Callable[[int], Any]], n: int, warmup: int = 20
) -> dict[str, float]:
    """Median milliseconds of each function, calls interleaved so drifting load hits all alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(n):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn(i)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def throughput(fn: Callable[[httpx.Client, int], Any], base: str, n: int, workers: int,
               headers: dict[str, str] | None = None) -> float:
    """Calls per second with ``workers`` clients sharing ``n`` calls."""
    clients = [httpx.Client(base_url=base, timeout=60, headers=headers) for _ in range(workers)]
    try:
        for c in clients:
            fn(c, -1)
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda i: fn(clients[i % workers], i), range(n)))
        return n / (time.perf_counter() - t)
    finally:
        for c in clients:
            c.close()


class Server:
    """``uvicorn api.main:app`` on a free port."""

    def __init__(self, db_url: str, cache: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        # The per-token write limit would answer the creation timings 429.
        env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache),
               "PRACTICE_CIRCLE_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT),
               "PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false"}
        self.log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"server exited: {log.read_text(errors='replace')[-2000:]}"
                raise RuntimeError(msg)
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        msg = "server did not start"
        raise RuntimeError(msg)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


def sample_points(district: District, k: int) -> list[tuple[float, float]]:
    cells = district.cells.sort_values("cell_id")
    rng = np.random.default_rng(15)
    idx = rng.choice(len(cells), size=min(k, len(cells)), replace=False)
    return [(float(cells["lon"].iloc[i]), float(cells["lat"].iloc[i])) for i in idx]


def bench_backend(name: str, db_url: str, district: District, cache: Path, log: Path,
                  points: list[tuple[float, float]], n: int, concurrency: int) -> dict[str, Any]:
    """Time /health, nearest-team and request creation over HTTP on one backend."""
    prepare_database(db_url, district)
    _, token = create_account(db_url, district, role="resident", name=f"bench-{name}")
    auth = {"Authorization": f"Bearer {token}"}
    srv = Server(db_url, cache, log)
    out: dict[str, Any] = {"backend": name}
    try:
        with httpx.Client(base_url=srv.base, timeout=60) as c:

            def nearest(i: int) -> None:
                lon, lat = points[i % len(points)]
                r = c.get("/teams/nearest", params={"lon": lon, "lat": lat,
                                                    "category": "health", "limit": 10})
                r.raise_for_status()

            timed = paired_ms({"health": lambda i: c.get("/health"), "nearest": nearest}, n)
            out["health_ms"], out["nearest_ms"] = timed["health"], timed["nearest"]

            def create(i: int) -> None:
                lon, lat = points[i % len(points)]
                r = c.post("/requests", headers=auth, json={
                    "lon": lon, "lat": lat, "category": "health", "description": f"bench {i}",
                    "contact": "13812341234"})
                r.raise_for_status()

            out["create_ms"] = per_call_ms(create, max(n // 3, 30), warmup=5)

        def health_c(cl: httpx.Client, i: int) -> None:
            cl.get("/health").raise_for_status()

        def create_c(cl: httpx.Client, i: int) -> None:
            lon, lat = points[i % len(points)]
            cl.post("/requests", json={"lon": lon, "lat": lat, "category": "health",
                                       "description": f"bench c{i}", "contact": "13812341234"}
                    ).raise_for_status()

        out["health_rps"] = throughput(health_c, srv.base, n, concurrency)
        out["create_rps"] = throughput(create_c, srv.base, n, concurrency, headers=auth)
    finally:
        srv.stop()
    out["nearest_ratio"] = out["nearest_ms"] / out["health_ms"]
    out["create_ratio"] = out["create_ms"] / out["health_ms"]
    out["create_rps_ratio"] = out["create_rps"] / out["health_rps"]
    return out


def main() -> int:
    """Run the benchmark and print one JSON object last; 1 when PostGIS was to run and did not."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300, help="calls per timing")
    ap.add_argument("--concurrency", type=int, default=8, help="clients for throughput")
    ap.add_argument("--sqlite-only", "--no-postgis", dest="sqlite_only", action="store_true",
                    help="leave PostGIS out (the goal is then not reported met)")
    args = ap.parse_args()

    cache = Path(os.environ.get("PRACTICE_CIRCLE_CACHE") or default_cache_dir())
    district = get_district(DEFAULT_DISTRICT, cache_dir=cache)
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        result = run(args, district, cache, Path(tmp))
    print(json.dumps(result, ensure_ascii=False, default=lambda x: round(float(x), 4)))
    return 1 if result["postgis"] == "not run" and not args.sqlite_only else 0


def run(args: argparse.Namespace, district: District, cache: Path, work: Path
        ) -> dict[str, Any]:
    """Every timing of the benchmark, SQLite databases and logs under ``work``."""
    points = sample_points(district, 50)
    sqlite_url = f"sqlite:///{work / 'bench.db'}"
    result: dict[str, Any] = {"district": district.name, "n": args.n,
                              "concurrency": args.concurrency, "teams": len(district.teams),
                              "nodes": district.network.n_nodes}

    # In-process: the service call, and the whole app through TestClient.
    prepare_database(sqlite_url, district)
    with session_maker(sqlite_url, readonly=True)() as s:
        def service(i: int) -> None:
            lon, lat = points[i % len(points)]
            nearest_teams(s, district, lon=lon, lat=lat, category="health", limit=10)

        result["inprocess_service_nearest_ms"] = per_call_ms(service, args.n)
    os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = sqlite_url
    os.environ["PRACTICE_CIRCLE_CACHE"] = str(cache)
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import get_settings

    get_settings.cache_clear()
    with TestClient(create_app()) as tc:

        def tc_nearest(i: int) -> None:
            lon, lat = points[i % len(points)]
            tc.get("/teams/nearest", params={"lon": lon, "lat": lat, "category": "health"})

        timed = paired_ms({"health": lambda i: tc.get("/health"), "nearest": tc_nearest}, args.n)
        result["inprocess_health_ms"] = timed["health"]
        result["inprocess_nearest_ms"] = timed["nearest"]
    result["inprocess_nearest_ratio"] = (
        result["inprocess_nearest_ms"] / result["inprocess_health_ms"])
    result["inprocess_service_ratio"] = (
        result["inprocess_service_nearest_ms"] / result["inprocess_health_ms"])
    print(f"in-process: service {result['inprocess_service_nearest_ms']:.3f} ms, "
          f"TestClient nearest {result['inprocess_nearest_ms']:.3f} ms vs /health "
          f"{result['inprocess_health_ms']:.3f} ms "
          f"(x{result['inprocess_nearest_ratio']:.2f})", flush=True)

    backends = [("sqlite", sqlite_url)]
    script = ["bash", str(ROOT / "scripts" / "postgres.sh")]
    was_running = subprocess.run([*script, "status"], check=False).returncode == 0
    not_run = "--sqlite-only" if args.sqlite_only else None
    if not args.sqlite_only:
        res = subprocess.run([*script, "start", "pc_bench"], capture_output=True, text=True,
                             check=False)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
            not_run = f"scripts/postgres.sh start failed: {last[-300:]}"
        else:
            pg = res.stdout.strip().splitlines()[-1]
            import psycopg

            admin = pg.replace("postgresql+psycopg", "postgresql")
            with psycopg.connect(admin, autocommit=True) as conn:  # a clean slate each run
                conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                             "CREATE EXTENSION IF NOT EXISTS postgis")
            backends.append(("postgis", pg))
    for name, url in backends:
        r = bench_backend(name, url, district, cache, work / f"{name}.log", points, args.n,
                          args.concurrency)
        result[name] = r
        print(f"{name}: /health {r['health_ms']:.3f} ms; nearest {r['nearest_ms']:.3f} ms "
              f"(x{r['nearest_ratio']:.2f}); create {r['create_ms']:.3f} ms "
              f"(x{r['create_ratio']:.2f}); {args.concurrency} clients: create "
              f"{r['create_rps']:.0f}/s vs /health {r['health_rps']:.0f}/s "
              f"(x{r['create_rps_ratio']:.2f})", flush=True)
    met = {name: bool(result[name]["nearest_ratio"] <= 3.0) for name, _ in backends}
    result["goal_met_by_backend"] = met
    if not_run is None:
        result["goal_nearest_http_within_3x_health"] = all(met.values())
        verdict = "met" if all(met.values()) else "NOT met"
    else:
        # Without PostGIS the goal is not established, whatever SQLite shows.
        result["postgis"] = "not run"
        result["postgis_not_run_reason"] = not_run
        result["goal_nearest_http_within_3x_health"] = None
        verdict = "not established (PostGIS not run)"
        print(f"PostGIS: not run ({not_run})", flush=True)
    print(f"goal, nearest team over HTTP within 3x /health on SQLite and PostGIS: {verdict}",
          flush=True)
    dispose_all()
    if len(backends) > 1 and not was_running:
        subprocess.run([*script, "stop"], capture_output=True, check=False)
    return result


if __name__ == "__main__":
    sys.exit(main())
