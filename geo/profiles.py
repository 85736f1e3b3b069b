"""Describe who walks: the pace and the streets of each walking profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo._errors import UnknownProfileError
from geo.coverage import DEFAULT_WALK_M_PER_MIN
from geo.district import District
from geo.network import WalkNetwork

#: Elderly pace as a share of the standard one (0.8 × 66.7 = 53.3 m/min ≈ 0.89 m/s).
ELDERLY_PACE_FACTOR = 0.8
#: Wheelchair pace in metres per second (see :data:`PROFILES`).
WHEELCHAIR_M_PER_S = 0.7


@dataclass(frozen=True)
class Profile:
    """A walking profile: pace, the street types it cannot use, and where the pace comes from.

    Attributes
    ----------
    name
        Profile code (``"standard"``, ``"elderly"``, ``"wheelchair"``).
    name_zh
        Chinese label.
    walk_m_per_min
        Pace in metres per minute.
    excluded_highways
        OSM ``highway`` values this profile cannot use; an edge is dropped when any of the ways
        merged into it has one of them.
    source
        Where the pace comes from; every value is a planning assumption, not a measurement here.
    """

    name: str
    name_zh: str
    walk_m_per_min: float
    excluded_highways: tuple[str, ...]
    source: str

    @property
    def walk_m_per_s(self) -> float:
        """Pace in metres per second."""
        return self.walk_m_per_min / 60.0

    def reach_m(self, minutes: float = 15.0) -> float:
        """Return the distance this profile walks in the given minutes."""
        return self.walk_m_per_min * minutes


#: The walking profiles, by code.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "standard",
            "一般居民",
            DEFAULT_WALK_M_PER_MIN,
            (),
            "GB 50180-2018 (城市居住区规划设计标准): the 15-minute life circle is 800-1000 m of "
            "walking; 1000 m in 15 min = 66.7 m/min (1.11 m/s). Planning assumption.",
        ),
        Profile(
            "elderly",
            "老年人",
            ELDERLY_PACE_FACTOR * DEFAULT_WALK_M_PER_MIN,
            (),
            "0.8 x standard = 53.3 m/min (0.89 m/s). Asher L, Aresu M, Falaschetti E, Mindell J. "
            "Most older pedestrians are unable to cross the road in time: a cross-sectional "
            "study. Age and Ageing 2012;41(5):690-694 (doi:10.1093/ageing/afs076): mean walking "
            "speed 0.9 m/s (men) and 0.8 m/s (women) aged 65+, against the 1.2 m/s assumed for "
            "crossings. Planning assumption.",
        ),
        Profile(
            "wheelchair",
            "轮椅使用者",
            WHEELCHAIR_M_PER_S * 60.0,
            ("steps",),
            "0.7 m/s = 42 m/min, after Boyce KE, Shields TJ, Silcock GWH. Toward the "
            "characterization of building occupancies for fire safety engineering: capabilities "
            "of disabled people moving horizontally and on an incline. Fire Technology "
            "1999;35(1):51-67 (self-propelled manual wheelchair users on the level, mean about "
            "0.69 m/s). Edges with highway=steps are not usable. Planning assumption.",
        ),
    )
}


def profile(name: str) -> Profile:
    """Return the walking profile with this name.

    Raises
    ------
    UnknownProfileError
        If the name is not one of :data:`PROFILES`; the message lists the valid ones.
    """
    try:
        return PROFILES[name]
    except KeyError:
        msg = f"unknown walking profile {name!r}; valid profiles: {', '.join(PROFILES)}"
        raise UnknownProfileError(msg) from None


def usable_edges(edges: pd.DataFrame, prof: Profile) -> np.ndarray:
    """Tell which edges a profile can use.

    A simplified edge may merge several ways (``highway`` like ``"steps;footway"``); it is unusable
    when any of them has an excluded value, since the route along it would cross the steps.

    Returns
    -------
    numpy.ndarray
        Boolean per edge row.
    """
    if not prof.excluded_highways:
        return np.ones(len(edges), dtype=bool)
    parts = edges["highway"].fillna("").astype(str).str.split(";")
    bad = set(prof.excluded_highways)
    return np.fromiter((not bad.intersection(p) for p in parts), dtype=bool, count=len(edges))


def network_for_profile(district: District, prof: Profile | str) -> WalkNetwork:
    """Return the walking network a profile can use.

    The standard and elderly profiles use the district's network as it is. The wheelchair
    profile gets a derived network without ``highway=steps`` edges; it keeps every node (so node
    order matches the district's), and nodes left without edges are simply unreachable.

    Parameters
    ----------
    district
        The district.
    prof
        A :class:`Profile` or its name.

    Raises
    ------
    UnknownProfileError
        If ``prof`` is an unknown name.
    """
    prof = profile(prof) if isinstance(prof, str) else prof
    keep = usable_edges(district.edges, prof)
    if keep.all():
        return district.network
    return WalkNetwork(
        nodes=district.nodes[["x", "y", "geometry"]],
        edges=district.edges.loc[keep].reset_index(drop=True),
        crs_metric=district.network.crs_metric,
    )
