"""Shared helpers of the dispatch tests: users, teams, a reset, and a real uvicorn server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, update

import geo
from api.services.accounts import create_user
from api.storage.models import (
    Activity,
    Attendance,
    Evidence,
    HoursEntry,
    IdempotencyRecord,
    OutboxEvent,
    PointsEntry,
    PointsLine,
    Redemption,
    Review,
    Reward,
    ServiceRequest,
    SignInCode,
    Signup,
    Team,
    TeamMember,
    Transition,
    User,
    Volunteer,
)
from api.storage.session import session_maker

ROOT = Path(__file__).resolve().parents[3]
#: A street corner in the served part of 小店区 (near the practice center).
HOME = (112.5501, 37.8024)
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres.sh"


def postgres_script(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/postgres.sh`` (start, status, stop...) and return what it did."""
    return subprocess.run(["bash", str(POSTGRES_SCRIPT), *args], capture_output=True, text=True,
                          timeout=600, check=False)


def drop_postgres_database(url: str) -> None:
    """Drop a database of the throwaway cluster, closing whatever is still connected to it."""
    import psycopg

    base, name = url.rsplit("/", 1)
    admin = base.replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(url: str, district: geo.District) -> None:
    """Delete every user, request and test team; put the demo teams back as seeded."""
    with session_maker(url)() as s:
        for model in (OutboxEvent, IdempotencyRecord, PointsEntry, Review, Transition, PointsLine,
                      Redemption, Reward, HoursEntry, Attendance, Signup, Activity, TeamMember,
                      Volunteer, Evidence, SignInCode):
            s.execute(delete(model))
        s.execute(delete(ServiceRequest))
        s.execute(delete(User))
        s.execute(delete(Team).where(Team.demo.is_(False)))
        for t in district.teams.itertuples():
            s.execute(update(Team).where(Team.team_id == t.team_id).values(
                active=bool(t.active), capacity=int(t.capacity)))
        s.commit()


@dataclass
class Actors:
    """Creates users (and test teams) straight in the database; returns auth headers."""

    url: str
    district: geo.District
    counter: int = 0
    teams: list[str] = field(default_factory=list)

    def user(self, role: str, team_id: str | None = None) -> dict[str, str]:
        self.counter += 1
        with session_maker(self.url)() as s:
            _, token = create_user(s, role=role, name=f"{role}-{self.counter}", team_id=team_id)
            s.commit()
        return {"Authorization": f"Bearer {token}"}

    def resident(self) -> dict[str, str]:
        return self.user("resident")

    def dispatcher(self) -> dict[str, str]:
        return self.user("dispatcher")

    def team(self, team_id: str) -> dict[str, str]:
        return self.user("team", team_id)

    def new_team(
        self, category: str, *, site_id: str | None = None, capacity: int = 1, active: bool = True
    ) -> str:
        """Add a non-demo team (deleted by :func:`reset`) and return its id."""
        site = site_id or str(self.district.positions["site_id"].iloc[0])
        self.counter += 1
        team_id = f"test-{self.counter}-{category}"
        with session_maker(self.url)() as s:
            s.add(Team(team_id=team_id, district=self.district.name, name=f"测试队{self.counter}",
                       categories=category, site_id=site, capacity=capacity, active=active,
                       demo=False))
            s.commit()
        self.teams.append(team_id)
        return team_id

    def set_demo_teams_active(self, active: bool) -> None:
        with session_maker(self.url)() as s:
            s.execute(update(Team).where(Team.demo.is_(True)).values(active=active))
            s.commit()


def new_request(category: str = "elderly", lon: float = HOME[0], lat: float = HOME[1],
                **extra: Any) -> dict[str, Any]:
    return {"lon": lon, "lat": lat, "category": category, "description": "代购药品",
            "contact": "13812341234", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn api.main:app`` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, *, url: str, cache: Path, log: Path, workers: int = 1,
                 env: Mapping[str, str] | None = None) -> None:
        self.db_url, self.cache, self.log_path, self.workers = url, cache, log, workers
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> Server:
        env: Mapping[str, str] = {
            **os.environ,
            "PRACTICE_CIRCLE_CACHE": str(self.cache),
            "PRACTICE_CIRCLE_DATABASE_URL": self.db_url,
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "info", "--no-access-log"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(env), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()}")
            try:
                up = httpx.get(self.base + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and self._started() >= self.workers:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s: {self.log()}")

    def _started(self) -> int:
        """Workers done with startup (district loaded, database prepared)."""
        text = self.log_path.read_bytes()[self._offset:]
        return text.count(b"Application startup complete")

    def restart(self, timeout: float = 120.0) -> Server:
        """Start again on a fresh port (after :meth:`kill` or :meth:`stop`)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        return self.start(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the server (and its workers): no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if hasattr(self, "_log"):
            self._log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if hasattr(self, "_log"):
            self._log.close()
