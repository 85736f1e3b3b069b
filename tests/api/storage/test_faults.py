"""Storage faults: a full disk is 503 through a real server, never a crash; a read-only cache
is one line and exit 2 from the CLI.

The database lives on a small tmpfs of its own (mounted here; the suite runs as root on the CI
machine), which the test fills up as a full disk would be, then frees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import geo
from api.services.accounts import create_account
from api.storage.session import dispose_all
from tests.api.dispatch.helpers import ROOT, Server, new_request

PROBLEM = "application/problem+json"


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs, unmounted afterwards."""
    if os.environ.get("PRACTICE_CIRCLE_SKIP_MOUNT") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_MOUNT=1")
    where = tmp_path / "disk"
    where.mkdir()
    res = _mount("-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(where))
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (needs root; PRACTICE_CIRCLE_SKIP_MOUNT=1 to skip): "
                    f"{res.stderr.strip()}")
    try:
        yield where
    finally:
        dispose_all()
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    # Unbuffered: a buffered file would try the last block again when closed, and fail there.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def _is_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code


def test_full_disk_answers_503_and_recovers(
    small_disk: Path, cache_dir: Path, district: geo.District, tmp_path: Path
) -> None:
    url = f"sqlite:///{small_disk / 'practice.db'}"
    _, token = create_account(url, district, role="resident", name="王大爷")
    auth = {"Authorization": f"Bearer {token}"}
    server = Server(url=url, cache=cache_dir, log=tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.base, timeout=60, headers=auth) as c:
            first = c.post("/requests", json=new_request())
            assert first.status_code == 201

            filler = _fill(small_disk)
            for _ in range(5):  # again and again: the process must survive each
                r = c.post("/requests", json=new_request(description="磁盘已满时的请求" * 20))
                _is_problem(r, 503, "storage_unavailable")
                assert int(r.headers["Retry-After"]) >= 1 and r.json()["trace_id"]
            assert server.proc is not None and server.proc.poll() is None
            health = c.get("/health").json()
            assert health["status"] == "degraded" and health["database"] == "unavailable"
            ready = c.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["ready"] is False

            filler.unlink()
            again = c.post("/requests", json=new_request())
            assert again.status_code == 201, again.text
            assert c.get("/health/ready").status_code == 200
            assert c.get(first.headers["Location"]).status_code == 200  # nothing lost

            assert server.proc.poll() is None
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_cli_on_an_unwritable_cache_is_one_line_and_exit_2(small_disk: Path) -> None:
    assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
    try:
        res = subprocess.run(
            [sys.executable, "-m", "api.cli", "coverage", "--cache", str(small_disk / "cache")],
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    finally:
        _mount("-o", "remount,rw", str(small_disk))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "cache" in res.stderr
