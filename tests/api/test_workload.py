"""Expensive routes are bounded: 503 + Retry-After beyond their slots, /health unaffected.

Through a real uvicorn server, as a crowd of anonymous clients would try it.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.dispatch.helpers import Server

#: Parameter sets that miss every cache (a new limit or pace each time).
ROUTES = ("/gaps", "/coverage", "/coverage/categories", "/recommendations", "/coverage/cells")


@pytest.fixture(scope="module")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("workload")
    srv = Server(url=f"sqlite:///{tmp / 'practice.db'}", cache=cache_dir, log=tmp / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _health_ms(client: httpx.Client, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get("/health")
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return statistics.median(times)


def _expensive(rng: random.Random) -> tuple[str, dict[str, object]]:
    path = rng.choice(ROUTES)
    minutes = round(rng.uniform(5, 30), 3)
    params: dict[str, object] = {"minutes": minutes}
    if path == "/coverage":
        params["walk_m_per_min"] = round(rng.uniform(40, 90), 3)
    if path == "/recommendations":
        params["add"] = rng.randint(1, 50)
    return path, params


def test_health_stays_fast_and_extra_work_gets_503(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as client:
        _health_ms(client, 20)  # warm up
        idle = _health_ms(client, 60)

        stop = threading.Event()
        seen: Counter[int] = Counter()
        bad: list[str] = []
        lock = threading.Lock()

        def crowd(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=server.base, timeout=60) as c:
                while not stop.is_set():
                    path, params = _expensive(rng)
                    r = c.get(path, params=params)
                    with lock:
                        seen[r.status_code] += 1
                        if r.status_code == 503:
                            body = r.json()
                            if body["code"] != "busy" or int(r.headers["Retry-After"]) < 1:
                                bad.append(r.text)
                        elif r.status_code != 200:
                            bad.append(f"{path} {params} {r.status_code} {r.text[:200]}")
                    if r.status_code == 503:
                        # Saturated, not flooded: a flood of requests is the rate limiter's
                        # business (tests/api/test_security.py), so wait a little as told.
                        stop.wait(0.5)

        threads = [threading.Thread(target=crowd, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)  # let the slots fill
            busy = _health_ms(client, 60)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
    assert bad == []
    assert seen[200] > 0 and seen[503] > 0, seen  # the slots were full: the crowd was refused
    assert busy < 3 * idle, f"/health median {busy:.2f} ms under load, {idle:.2f} ms idle"


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def test_workers_end_with_a_killed_server(cache_dir: Path, tmp_path: Path) -> None:
    srv = Server(url=f"sqlite:///{tmp_path / 'practice.db'}", cache=cache_dir,
                 log=tmp_path / "server.log").start()
    assert srv.proc is not None
    workers = _children(srv.proc.pid)
    assert workers, "the planning workers start with the server"
    os.kill(srv.proc.pid, signal.SIGKILL)  # the server alone (not its group): no shutdown runs
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if Path(f"/proc/{w}/stat").exists()
             and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    srv.kill()  # the rest of the group, whatever the outcome
    assert alive == [], "orphaned planning workers"
