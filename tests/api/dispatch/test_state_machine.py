"""Random lifecycles (Hypothesis state machine): states only move forward, by allowed steps."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

import geo
from tests.api.dispatch.helpers import Actors, new_request, reset

# The lifecycle as the issue states it, written out independently of the service's own table.
ALLOWED: dict[str, tuple[set[str], str]] = {
    "dispatch": ({"submitted"}, "dispatched"),
    "accept": ({"submitted", "dispatched"}, "accepted"),
    "decline": ({"dispatched"}, "submitted"),
    "complete": ({"accepted"}, "completed"),
    "review": ({"completed"}, "reviewed"),
    "cancel": ({"submitted", "dispatched", "accepted"}, "cancelled"),
}
ORDER = ["submitted", "dispatched", "accepted", "completed", "reviewed", "cancelled"]
TERMINAL = {"reviewed", "cancelled"}


def progress(history: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(round, rank) after each step: a decline starts a new round."""
    out, round_ = [], 0
    for h in history:
        if h["action"] == "decline":
            round_ += 1
        out.append((round_, ORDER.index(h["to_state"])))
    return out


class Lifecycle(RuleBasedStateMachine):
    client: ClassVar[TestClient]
    url: ClassVar[str]
    district: ClassVar[geo.District]

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        reset(self.url, self.district)
        actors = Actors(self.url, self.district)
        actors.set_demo_teams_active(False)  # only the teams below can be dispatched to
        self.team_ids = [actors.new_team("elderly", capacity=2) for _ in range(3)]
        self.teams = [actors.team(t) for t in self.team_ids]
        self.resident = actors.resident()
        self.dispatcher = actors.dispatcher()
        self.known: dict[int, tuple[str, int]] = {}  # id -> (state, steps)

    def _act(self, rid: int, action: str, who: dict[str, str], **body: Any) -> None:
        before, steps = self.known[rid]
        r = self.client.post(f"/requests/{rid}/{action}", json=body or None, headers=who)
        sources, target = ALLOWED[action]
        event(f"{action} {r.status_code}")
        if r.status_code == 200:
            assert before in sources, (action, before)
            assert r.json()["state"] == target
            self.known[rid] = (target, steps + 1)
        else:
            problem = r.json()
            assert r.status_code in (403, 404, 409), r.text
            if problem["code"] == "invalid_transition":
                assert before not in sources and problem["state"] == before
            else:
                # 404: a team acting on another team's order (it does not see it).
                assert problem["code"] in ("forbidden", "not_found", "team_unavailable",
                                           "no_eligible_team")
        self._check(rid)

    def _check(self, rid: int) -> None:
        r = self.client.get(f"/requests/{rid}", headers=self.dispatcher)
        body = r.json()
        state, steps = self.known[rid]
        assert body["state"] == state
        history = body["history"]
        assert len(history) == steps
        assert history[0]["from_state"] is None and history[0]["to_state"] == "submitted"
        for prev, nxt in itertools.pairwise(history):
            assert nxt["from_state"] == prev["to_state"]
            assert prev["to_state"] not in TERMINAL
            assert nxt["from_state"] in ALLOWED[nxt["action"]][0]
        keys = progress(history)
        assert keys == sorted(set(keys)), keys  # strictly forward

    @rule(target=requests)
    def create(self) -> int:
        r = self.client.post("/requests", json=new_request("elderly"), headers=self.resident)
        assert r.status_code == 201, r.text
        rid: int = r.json()["id"]
        self.known[rid] = ("submitted", 1)
        return rid

    @rule(rid=requests, named=st.none() | st.integers(0, 2))
    def dispatch(self, rid: int, named: int | None) -> None:
        body = {} if named is None else {"team_id": self.team_ids[named]}
        self._act(rid, "dispatch", self.dispatcher, **body)

    @rule(rid=requests, team=st.integers(0, 2))
    def accept(self, rid: int, team: int) -> None:
        self._act(rid, "accept", self.teams[team])

    @rule(rid=requests, team=st.integers(0, 2))
    def decline(self, rid: int, team: int) -> None:
        self._act(rid, "decline", self.teams[team])

    @rule(rid=requests, team=st.integers(0, 2), hours=st.floats(0.5, 8))
    def complete(self, rid: int, team: int, hours: float) -> None:
        self._act(rid, "complete", self.teams[team], hours=hours)

    @rule(rid=requests, stars=st.integers(1, 5))
    def review(self, rid: int, stars: int) -> None:
        self._act(rid, "review", self.resident, stars=stars)

    @rule(rid=requests, by_dispatcher=st.booleans())
    def cancel(self, rid: int, by_dispatcher: bool) -> None:
        self._act(rid, "cancel", self.dispatcher if by_dispatcher else self.resident)

    @invariant()
    def capacity_holds(self) -> None:
        ranking = self.client.get("/teams/nearest", params={
            "lon": 112.5501, "lat": 37.8024, "category": "elderly", "limit": 200}).json()
        for t in ranking["teams"]:
            assert t["open_requests"] <= t["capacity"]


def test_random_lifecycles_only_move_forward(
    client: TestClient, db: str, district: geo.District
) -> None:
    Lifecycle.client, Lifecycle.url, Lifecycle.district = client, db, district
    run_state_machine_as_test(Lifecycle, settings=settings(
        max_examples=12, stateful_step_count=25, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow]))
