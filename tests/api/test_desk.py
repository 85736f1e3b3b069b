"""The workbench's services on their own: SLA settings, duplicates at scale, the CLI escalation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import geo
from api.cli import app
from api.domain import RequestState
from api.services.duplicates import find_duplicates
from api.services.escalation import assign_area, due_at, sla_minutes
from api.services.matching import position_walk
from api.settings import Settings
from api.storage.models import ServiceRequest, Transition, User, point
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from geo.walk import enter_each, source_walks

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def unsaved(i: int, lon: float, lat: float, category: str = "elderly",
            created: datetime = T0) -> ServiceRequest:
    return ServiceRequest(id=i, lon=lon, lat=lat, category=category, created_at=created,
                          state=RequestState.SUBMITTED)


def test_sla_setting_is_json_per_category(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRACTICE_CIRCLE_SLA_MINUTES", '{"*": 90, "assistance": 30}')
    monkeypatch.setenv("PRACTICE_CIRCLE_ESCALATION_POLL_S", "0")
    s = Settings()
    assert s.sla_minutes == {"*": 90.0, "assistance": 30.0} and s.escalation_poll_s == 0
    assert sla_minutes("assistance", s.sla_minutes) == 30 and sla_minutes("legal",
                                                                          s.sla_minutes) == 90
    monkeypatch.setenv("PRACTICE_CIRCLE_SLA_MINUTES", '{"legal": 45}')
    assert Settings().sla_minutes == {"*": 120.0, "legal": 45.0}  # "*" defaults to 120
    monkeypatch.setenv("PRACTICE_CIRCLE_SLA_MINUTES", '{"nonsense": 30}')
    with pytest.raises(ValidationError, match="unknown categories"):
        Settings()
    monkeypatch.setenv("PRACTICE_CIRCLE_SLA_MINUTES", '{"*": 0}')
    with pytest.raises(ValidationError, match="more than 0"):
        Settings()


def test_due_at_runs_only_while_waiting() -> None:
    req = unsaved(1, 112.55, 37.80)
    req.level_since = T0 + timedelta(minutes=10)
    assert due_at(req, {"*": 60}) == T0 + timedelta(minutes=70)
    req.state = RequestState.DISPATCHED
    assert due_at(req, {"*": 60, "elderly": 15}) == T0 + timedelta(minutes=25)
    for closed in (RequestState.ACCEPTED, RequestState.REJECTED, RequestState.MERGED):
        req.state = closed
        assert due_at(req, {"*": 60}) is None


def test_area_falls_back_to_the_township_without_stations(district: geo.District) -> None:
    walk = position_walk(district)
    at = walk.attach(112.5501, 37.8024)
    level, site = assign_area(district, at)
    assert level == "community"
    no_stations = district.with_registry(
        district.positions[district.positions["level"] != "community"], district.teams,
        version=district.registry_version + 1000)
    level, site = assign_area(no_stations, position_walk(no_stations).attach(112.5501, 37.8024))
    assert level == "township"
    metres = position_walk(no_stations).walk_m(position_walk(no_stations).attach(112.5501,
                                                                                   37.8024))
    levels = no_stations.positions["level"].to_numpy()
    townships = np.flatnonzero(levels == "township")
    assert site == no_stations.positions["site_id"].iloc[townships[np.argmin(metres[townships])]]


def test_duplicates_match_full_walks_and_scale(district: geo.District) -> None:
    """Against every pair walked in full (one Dijkstra row per order), and 2,000 orders fast."""
    rng = np.random.default_rng(7)
    nodes = district.network.nodes
    pick = rng.choice(len(nodes), 60, replace=False)
    # Pairs of orders a few metres to ~200 m apart, scattered over the district.
    lon = np.r_[nodes.geometry.x.to_numpy()[pick], nodes.geometry.x.to_numpy()[pick] + 0.0015]
    lat = np.r_[nodes.geometry.y.to_numpy()[pick], nodes.geometry.y.to_numpy()[pick] + 0.0004]
    cats = ["elderly" if i % 3 else "legal" for i in range(len(lon))]
    hours = [0 if i % 5 else 30 for i in range(len(lon))]  # a few outside the 24 h window
    reqs = [unsaved(i + 1, float(lon[i]), float(lat[i]), cats[i],
                    T0 + timedelta(hours=hours[i])) for i in range(len(lon))]
    found = find_duplicates(district, reqs, window_hours=24, walk_m=300)

    net = district.network
    at = net.attach(lon, lat)
    full = enter_each(net, source_walks(net, at), at, at)
    full = np.minimum(full, full.T)
    expected = set()
    for i in range(len(reqs)):
        for j in range(len(reqs)):
            if (i != j and full[i, j] < 300 and cats[i] == cats[j]
                    and abs(hours[i] - hours[j]) <= 24):
                expected.add((reqs[i].id, reqs[j].id))
    got = {(a, d.id) for a, dups in found.items() for d in dups}
    assert got == expected and len(expected) >= 20
    for a, dups in found.items():
        for d in dups:
            assert d.walk_m == pytest.approx(full[a - 1, d.id - 1], abs=0.1)

    many = [unsaved(i + 1, float(x), float(y)) for i, (x, y) in enumerate(zip(
        rng.uniform(lon.min(), lon.max(), 2000), rng.uniform(lat.min(), lat.max(), 2000),
        strict=True))]
    start = time.perf_counter()
    big = find_duplicates(district, many, window_hours=24, walk_m=300)
    took = time.perf_counter() - start
    assert sum(len(v) for v in big.values()) > 0
    assert took < 10, f"2,000 open orders took {took:.1f} s"


def test_cli_escalates_once(tmp_path: Path, district: geo.District, cache_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    prepare_database(url, district)
    station = district.positions[district.positions["level"] == "community"].iloc[0]
    with session_maker(url)() as s:
        user = User(name="居民", role="resident", token_hash="x" * 64, active=True)
        s.add(user)
        s.flush()
        since = datetime.now(UTC) - timedelta(minutes=200)
        req = ServiceRequest(
            district=district.name, resident_id=user.id, category="legal", description="咨询",
            contact="13812341234", lon=112.55, lat=37.80, geom=point(112.55, 37.80),
            state=RequestState.SUBMITTED, round=0, version=1, created_at=since,
            updated_at=since, level="community", area_site_id=str(station.site_id),
            level_since=since)
        s.add(req)
        s.commit()
        rid = req.id
    res = CliRunner().invoke(app, ["desk", "escalate", "--once", "--json", "--database-url", url,
                                   "--cache", str(cache_dir)])
    assert res.exit_code == 0, res.output
    moved = json.loads(res.stdout.strip().splitlines()[-1])["escalated"]
    assert moved == [{"request_id": rid, "from_site": str(station.site_id),
                      "to_site": str(station.parent_id), "to_level": "township"}]
    res = CliRunner().invoke(app, ["desk", "escalate", "--once", "--database-url", url,
                                   "--cache", str(cache_dir)])
    assert res.exit_code == 0 and "escalated 0 overdue orders" in res.stdout
    with session_maker(url)() as s:
        steps = s.query(Transition).filter_by(request_id=rid, action="escalate").all()
        assert len(steps) == 1 and "超时未派单，自动升级" in steps[0].note


def test_escalation_passes_over_a_closed_township(tmp_path: Path,
                                                 district: geo.District) -> None:
    from sqlalchemy import update

    from api.services.escalation import escalate_due
    from api.storage.models import Position

    url = f"sqlite:///{tmp_path / 'closed.db'}"
    prepare_database(url, district)
    station = district.positions[district.positions["level"] == "community"].iloc[0]
    township = district.positions.set_index("site_id").loc[station.parent_id]
    with session_maker(url)() as s:
        s.execute(update(Position).where(Position.site_id == station.parent_id)
                  .values(active=False))
        user = User(name="居民", role="resident", token_hash="y" * 64, active=True)
        s.add(user)
        s.flush()
        req = ServiceRequest(
            district=district.name, resident_id=user.id, category="legal", description="咨询",
            contact="13812341234", lon=112.55, lat=37.80, geom=point(112.55, 37.80),
            state=RequestState.DISPATCHED, round=0, version=1, created_at=T0, updated_at=T0,
            level="community", area_site_id=str(station.site_id), level_since=T0)
        s.add(req)
        s.commit()
        rid = req.id
    moved = escalate_due(session_maker(url), sla={"*": 30}, now=T0 + timedelta(minutes=31))
    assert [(m.request_id, m.to_site, m.to_level) for m in moved] == [
        (rid, str(township.parent_id), "center")]
    with session_maker(url)() as s:
        step = s.query(Transition).filter_by(request_id=rid, action="escalate").one()
        assert "超时未接单，自动升级" in step.note  # it was dispatched, not accepted in time
        assert step.from_state == step.to_state == "dispatched"


def test_the_system_role_cannot_be_created(tmp_path: Path, district: geo.District,
                                           cache_dir: Path) -> None:
    """Nobody makes a user of the server's own role: it never signs in."""
    from api.services.accounts import create_user

    url = f"sqlite:///{tmp_path / 'system.db'}"
    prepare_database(url, district)
    with session_maker(url)() as s, pytest.raises(ValueError, match="unknown role 'system'"):
        create_user(s, role="system", name="系统")
    res = CliRunner().invoke(app, ["users", "create", "--role", "system", "--name", "系统",
                                   "--database-url", url, "--cache", str(cache_dir)])
    assert res.exit_code != 0
    with session_maker(url)() as s:
        assert s.query(User).filter_by(role="system").count() == 0
