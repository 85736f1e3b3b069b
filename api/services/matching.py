"""Rank volunteer teams by walking minutes on the street network from a request's position.

Teams sit at practice positions, so the walk from every position to every network node is
computed once per district with one multi-source Dijkstra (one row per position, not reduced to
the nearest): a positions x nodes matrix of a few MB. A query attaches the request point to its
nearest street edge and takes, for every position, the shorter way in through either end of that
edge (plus the walk along the edge and onto the street): a lookup, no graph search.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from api.services.analysis import analysis_of
from api.services.eligibility import open_requests_by_team, reasons_against
from api.storage.models import Position, Team
from geo import DEFAULT_WALK_M_PER_MIN, District
from geo.categories import category as check_category
from geo.coverage import attach_positions
from geo.network import MAX_ACCESS_M, EdgePositions, WalkNetwork
from geo.walk import enter_each, source_walks


@dataclass
class PositionWalk:
    """Walking metres from every practice position to every node of a district's network.

    ``dist[i, j]`` is the walk from position ``site_ids[i]`` (its access walk onto the street
    included) to node ``j``.
    """

    network: WalkNetwork
    site_ids: np.ndarray
    sources: EdgePositions
    dist: np.ndarray
    row: dict[str, int] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.row = {str(s): i for i, s in enumerate(self.site_ids)}

    @classmethod
    def from_district(cls, district: District) -> PositionWalk:
        """Run the one Dijkstra over all the district's positions."""
        network = district.network
        sources = attach_positions(network, district.positions)
        dist = source_walks(network, sources)
        site_ids = district.positions["site_id"].to_numpy(dtype=object)
        return cls(network, site_ids, sources, dist)

    def attach(
        self, lon: float, lat: float, *, max_access_m: float = MAX_ACCESS_M
    ) -> EdgePositions:
        """Attach one point to its street edge.

        Raises
        ------
        OutOfAreaError
            If the point is farther than ``max_access_m`` from every street (message in zh-CN).
        """
        with self._lock:  # pyproj transformers are not shared across threads
            return self.network.attach(np.array([lon]), np.array([lat]), max_access_m=max_access_m)

    def attach_many(self, lon: np.ndarray, lat: np.ndarray) -> EdgePositions:
        """Attach many points to their street edges at once (as :meth:`attach`, one lock)."""
        with self._lock:
            return self.network.attach(lon, lat)

    def walk_m(self, at: EdgePositions) -> np.ndarray:
        """Return walking metres from every position to an attached point (``inf``: unreachable).

        Either end of the point's edge, or straight along it from a position on the same edge
        (:func:`geo.walk.enter_each`): a lookup in :attr:`dist`, no graph search.
        """
        return enter_each(self.network, self.dist, at, self.sources)[:, 0]


def position_walk(district: District) -> PositionWalk:
    """Return the :class:`PositionWalk` of the district's registry version, computed once.

    Kept by the district's analysis (:mod:`api.services.analysis`): one per registry version
    and process, made by one thread while the others wait for it.
    """
    return analysis_of(district).once("position_walk",
                                      lambda: PositionWalk.from_district(district))


@dataclass(frozen=True)
class Candidate:
    """A team ranked for a request, with why it is (not) eligible."""

    team_id: str
    name: str
    categories: list[str]
    site_id: str
    site_name: str
    site_level: str
    walk_m: float
    walk_minutes: float
    capacity: int
    open_requests: int
    active: bool
    reasons: list[str]

    @property
    def eligible(self) -> bool:
        """True when nothing stands in the way."""
        return not self.reasons

    @property
    def free_capacity(self) -> int:
        """Places left for more open requests."""
        return max(self.capacity - self.open_requests, 0)


@dataclass(frozen=True)
class Ranking:
    """Teams ranked by walking minutes from a point."""

    lon: float
    lat: float
    category: str
    access_m: float
    walk_m_per_min: float
    candidates: list[Candidate]
    considered: int


_open = open_requests_by_team()
#: Every team of a district with its position and open requests: one query, built once.
_TEAMS = (
    select(
        Team.team_id, Team.name, Team.categories, Team.site_id, Team.capacity, Team.active,
        Position.name, Position.level, func.coalesce(_open.c.n, 0),
    )
    .join(Position, Position.site_id == Team.site_id)
    .outerjoin(_open, _open.c.team_id == Team.team_id)
    .where(Team.district == bindparam("district"))
)


def rank_teams(
    session: Session,
    district: District,
    *,
    lon: float,
    lat: float,
    category: str,
    limit: int | None = 10,
    eligible_only: bool = False,
    exclude: frozenset[str] = frozenset(),
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
) -> Ranking:
    """Rank the district's teams by walking minutes to a point, saying why each is eligible.

    Parameters
    ----------
    session
        Database session (teams and their open requests are read from it).
    district
        The district whose network and positions to walk.
    lon, lat
        WGS84 position of the request.
    category
        Service category the request needs.
    limit
        Keep this many teams (``None``: all).
    eligible_only
        Leave out teams that cannot take the request.
    exclude
        Team ids that declined the request before (reported as ``declined``).
    walk_m_per_min
        Walking pace.

    Raises
    ------
    UnknownCategoryError
        If the category is not one of the 8+N.
    OutOfAreaError
        If the point is more than :data:`MAX_ACCESS_M` from the walking network.
    """
    check_category(category)
    walk = position_walk(district)
    at = walk.attach(lon, lat)
    metres = walk.walk_m(at)
    rows = session.connection().execute(_TEAMS, {"district": district.name}).all()
    ranked = []
    for row in rows:
        team_id, _, cats, site_id, capacity, active, _, _, n_open = row
        i = walk.row.get(site_id)
        m = float(metres[i]) if i is not None else math.inf
        reasons = reasons_against(
            category, offered=cats.split(","), active=active, open_requests=n_open,
            capacity=capacity, declined=team_id in exclude, reachable=math.isfinite(m),
        )
        if not (eligible_only and reasons):
            ranked.append((m, team_id, reasons, row))
    # Those who can take it first, each group nearest first.
    ranked.sort(key=lambda r: (bool(r[2]), r[0], r[1]))
    if limit is not None:
        ranked = ranked[:limit]
    candidates = [
        Candidate(
            team_id=team_id, name=name, categories=cats.split(","), site_id=site_id,
            site_name=site_name, site_level=level, walk_m=m, walk_minutes=m / walk_m_per_min,
            capacity=capacity, open_requests=n_open, active=active, reasons=reasons,
        )
        for m, team_id, reasons, (_, name, cats, site_id, capacity, active, site_name, level,
                                  n_open) in ranked
    ]
    return Ranking(
        lon=lon, lat=lat, category=category, access_m=float(at.access_m[0]),
        walk_m_per_min=walk_m_per_min, candidates=candidates, considered=len(rows),
    )
