"""Flag possible duplicate orders: same category, both open, close in time and by walking.

Two residents of one building often order the same help twice. Orders are flagged as possible
duplicates of each other when they are of one category, both open, created within
``duplicate_window_hours`` of each other and less than ``duplicate_walk_m`` apart **by walking
on the street network** (two flats either side of a railway are not one call). All open orders
are attached to the network at once and searched from together, each search cut off at the
limit (:func:`geo.walk.reach`: csgraph Dijkstra over the network's CSR arrays); the pairs are
then filtered with array operations, never pair by pair in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from api.services.matching import position_walk
from api.storage.models import ServiceRequest, as_utc
from geo import District
from geo.walk import reach


@dataclass(frozen=True)
class Duplicate:
    """Another open order that may be the same call, and how far it is by walking."""

    id: int
    walk_m: float


def find_duplicates(
    district: District,
    reqs: Sequence[ServiceRequest],
    *,
    window_hours: float,
    walk_m: float,
) -> dict[int, list[Duplicate]]:
    """Return, for each order, the others that may duplicate it (nearest first).

    Parameters
    ----------
    district
        The district whose walking network the orders are on.
    reqs
        Open orders of the district (any categories).
    window_hours
        Most hours between the two orders' creation.
    walk_m
        Walking metres below which two orders are flagged (access walks onto the street
        included, by the package's one walking rule).
    """
    out: dict[int, list[Duplicate]] = {r.id: [] for r in reqs}
    if len(reqs) < 2:
        return out
    walk = position_walk(district)
    lon = np.array([r.lon for r in reqs], dtype=float)
    lat = np.array([r.lat for r in reqs], dtype=float)
    at = walk.attach_many(lon, lat)
    found = reach(walk.network, at, at, limit_m=walk_m)
    t, s, m = found.target, found.source, found.walk_m
    cats = np.array([r.category for r in reqs], dtype=object)
    created = np.array([_seconds(r.created_at) for r in reqs])
    keep = ((t != s) & (m < walk_m) & (cats[t] == cats[s])
            & (np.abs(created[t] - created[s]) <= window_hours * 3600.0))
    # A walk is not always symmetric (one-way access onto a street); take the shorter per pair.
    lo, hi, m = np.minimum(t, s)[keep], np.maximum(t, s)[keep], m[keep]
    order = np.lexsort((m, hi, lo))
    lo, hi, m = lo[order], hi[order], m[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])] if len(lo) else lo.astype(bool)
    for a, b, d in zip(lo[first], hi[first], m[first], strict=True):
        out[reqs[a].id].append(Duplicate(reqs[b].id, round(float(d), 1)))
        out[reqs[b].id].append(Duplicate(reqs[a].id, round(float(d), 1)))
    for dups in out.values():
        dups.sort(key=lambda d: (d.walk_m, d.id))
    return out


def _seconds(value: datetime) -> float:
    return as_utc(value).timestamp()
