"""One analysis per loaded district: everything computed for it, kept while it is served.

A district's analysis (:class:`DistrictAnalysis`) holds what depends on its OSM data only, for
as long as the district is loaded: the walking network of each profile, residents per cell,
where they live (the cell points) and the basemap. What depends on its registry is held per
registry version (:class:`VersionAnalysis`): coverage for every limit, pace, profile, category
and extra sites; service areas; the walks from every position that dispatch ranks teams by;
the positions prepared for 离我最近; the map's page and positions. A registry edit makes a new
:class:`geo.District` snapshot (:meth:`geo.District.with_registry`): its version starts empty
and the OSM part is reused as it is, so an edit invalidates exactly what it changes.

Memory stays bounded however long a server runs: the current and the previous registry
versions are kept (a request that began on the previous one finishes on it), parameterised
results are dropped least recently used first, and only a few districts are held.

Every process has its own analyses: the server's, each forked planning worker's
(:mod:`api.workload`, which rebuilds the snapshot from the registry sent with each call) and
the CLI's. :func:`analysis_of` finds the one of a district snapshot; the snapshots of one
loaded district share its walking network, and that is how they are recognised.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

import geopandas as gpd
import numpy as np

from geo import Coverage, District, coverage
from geo._errors import SitingError
from geo.categories import category
from geo.coverage import category_coverages
from geo.demand import cell_demand
from geo.grid import CellPoints, resident_points
from geo.network import WalkNetwork
from geo.profiles import Profile, network_for_profile, profile
from geo.siting import coverage_with_extra_sites, read_extra_sites

T = TypeVar("T")

#: Registry versions kept per district: the current one and the one before it.
KEPT_VERSIONS = 2
#: Parameterised results (coverages, service areas, answers) kept per registry version.
RESULTS_PER_VERSION = 32
#: Residents estimates kept per district (the bundled one and a few user files).
DEMAND_FILES = 4
#: Districts whose analyses a process keeps (a server serves a few; tests load more).
MAX_DISTRICTS = 4


class Kept:
    """Results by key, each made once even when several threads ask for it at once.

    Parameters
    ----------
    size
        Keep at most this many, dropping the least recently used (``None``: no bound, for a
        fixed set of keys).
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """Return the result kept under ``key``, making it with ``make()`` if there is none.

        A failure is not kept: the next call tries again.
        """
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return cast(T, self._items[key])
            making = self._making.setdefault(key, threading.Lock())
        with making:  # one thread makes it, the others wait for it
            try:
                with self._lock:
                    if key in self._items:
                        self._items.move_to_end(key)
                        return cast(T, self._items[key])
                value = make()
                with self._lock:
                    self._items[key] = value
                    while self.size is not None and len(self._items) > self.size:
                        self._items.popitem(last=False)
            finally:
                with self._lock:
                    if self._making.get(key) is making:
                        del self._making[key]
        return value

    def _after_fork(self) -> None:
        # A lock another thread held when the process forked would never be released here.
        self._lock = threading.Lock()
        self._making = {}


class DistrictAnalysis:
    """What one loaded district's analysis keeps: its OSM part, and its registry versions.

    Parameters
    ----------
    district
        The district, at any registry version (its OSM data is what is used here).
    kept_versions
        Registry versions to keep at once.
    """

    def __init__(self, district: District, *, kept_versions: int = KEPT_VERSIONS) -> None:
        self.name = district.name
        self.network = district.network
        # The OSM part of every snapshot is this one's (nodes, edges, cells, places shared).
        self._osm = district
        self.kept_versions = max(1, int(kept_versions))
        self._networks: Kept = Kept()
        self._demand: Kept = Kept(DEMAND_FILES)
        self._osm_kept: Kept = Kept()
        self._versions: OrderedDict[tuple[int, int], VersionAnalysis] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the OSM part

    def profile_network(self, profile_name: str) -> WalkNetwork:
        """Return the walking network a profile can use (wheelchair: no steps), built once."""
        if profile_name == "standard":
            return self.network
        return self._networks.get(profile_name,
                                  lambda: network_for_profile(self._osm, profile_name))

    def demand(self, demand_file: str | None = None) -> gpd.GeoDataFrame:
        """Residents per cell (bundled estimate, WorldPop dasymetric, or the user's file)."""
        return self._demand.get(demand_file,
                                lambda: cell_demand(self._osm, demand_file=demand_file))

    @property
    def cell_points(self) -> CellPoints:
        """Where each cell's residents are: the district's OSM housing (computed once)."""
        return self._osm_kept.get("cell_points", lambda: resident_points(self._osm))

    @property
    def inside(self) -> np.ndarray:
        """Per network node: inside the district outline."""
        return self._osm_kept.get("inside", lambda: self._osm.nodes["inside"].to_numpy())

    def once(self, name: str, make: Callable[[], T]) -> T:
        """Return a result of the OSM data only (e.g. the basemap), made once per district."""
        return self._osm_kept.get(("once", name), make)

    # ------------------------------------------------------------- registry versions

    def at(self, district: District) -> VersionAnalysis:
        """Return the analysis of a snapshot of this district, at its registry version.

        Kept by the registry version and the snapshot itself: two databases (tests, a CLI
        pointed elsewhere) may reach the same version number with different registries. The
        least recently used version beyond :attr:`kept_versions` is dropped.

        Raises
        ------
        ValueError
            If the snapshot is of another loaded district (a bug: see :func:`analysis_of`).
        """
        if district.network is not self.network:
            msg = f"{district.name!r} is not a snapshot of the district analysed here"
            raise ValueError(msg)
        key = (district.registry_version, id(district))
        with self._lock:
            found = self._versions.get(key)
            if found is None or found.district is not district:
                found = VersionAnalysis(self, district)
                self._versions[key] = found
            self._versions.move_to_end(key)
            while len(self._versions) > self.kept_versions:
                self._versions.popitem(last=False)
            return found

    @property
    def versions(self) -> list[int]:
        """Registry versions kept now, least recently used first."""
        with self._lock:
            return [v.version for v in self._versions.values()]

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        for kept in (self._networks, self._demand, self._osm_kept):
            kept._after_fork()
        for version in self._versions.values():
            version._after_fork()


class VersionAnalysis:
    """What is computed on one registry version of a district (one :class:`geo.District`).

    Parameters
    ----------
    osm
        The district's analysis, whose OSM part this version reuses.
    district
        The snapshot: the district at this registry version.
    """

    def __init__(self, osm: DistrictAnalysis, district: District) -> None:
        self.osm = osm
        self.district = district
        self.version = district.registry_version
        self._results: Kept = Kept(RESULTS_PER_VERSION)
        self._once: Kept = Kept()

    def memo(self, key: tuple[Hashable, ...], make: Callable[[], T]) -> T:
        """Return a parameterised result on this registry (least recently used dropped).

        ``key`` starts with what is computed (``("service_areas", minutes, profile)``).
        """
        return self._results.get(key, make)

    def once(self, name: str, make: Callable[[], T]) -> T:
        """Return a result made once on this registry (the position walks, a map body)."""
        return self._once.get(name, make)

    def coverage(
        self,
        *,
        minutes: float = 15.0,
        profile_name: str = "standard",
        walk_m_per_min: float | None = None,
        category_code: str | None = None,
        extra_sites: str | None = None,
    ) -> Coverage:
        """Coverage for a profile, optionally one category and optionally with extra sites.

        Kept per limit, pace, profile, category and extra sites file; the standard pace of a
        profile and the same pace given explicitly are one result.

        Raises
        ------
        UnknownProfileError, UnknownCategoryError
            If the profile or the category is not known.
        SitingError
            If extra sites are asked for on a profile other than the standard one, or their
            file is not usable.
        """
        prof = profile(profile_name)
        speed = pace(prof, walk_m_per_min)
        if category_code:
            category(category_code)
        if extra_sites and profile_name != "standard":
            msg = "--extra-sites is computed on the standard network; drop --profile"
            raise SitingError(msg)
        key = ("coverage", float(minutes), speed, prof.name, category_code or None,
               extra_sites or None)
        return self.memo(key, lambda: self._coverage(
            minutes=float(minutes), profile_name=prof.name, speed=speed,
            category_code=category_code or None, extra_sites=extra_sites or None,
        ))

    def _coverage(self, *, minutes: float, profile_name: str, speed: float,
                  category_code: str | None, extra_sites: str | None) -> Coverage:
        d, osm = self.district, self.osm
        if extra_sites:
            return coverage_with_extra_sites(
                d, read_extra_sites(extra_sites), category=category_code, minutes=minutes,
                walk_m_per_min=speed, cell_points=osm.cell_points,
            )
        net = osm.profile_network(profile_name)
        if category_code:
            return category_coverages(
                net, d.positions, d.cells, teams=d.teams, minutes=minutes,
                walk_m_per_min=speed, categories=[category_code], inside=osm.inside,
                cell_points=osm.cell_points,
            )[category_code]
        return coverage(net, d.positions, d.cells, minutes=minutes, walk_m_per_min=speed,
                        inside=osm.inside, cell_points=osm.cell_points)

    def _after_fork(self) -> None:
        self._results._after_fork()
        self._once._after_fork()


def pace(prof: Profile, walk_m_per_min: float | None) -> float:
    """Return the pace to use: an explicit one, else the profile's."""
    return float(walk_m_per_min) if walk_m_per_min else float(prof.walk_m_per_min)


# ------------------------------------------------------------------ the process's analyses

_ANALYSES: OrderedDict[int, DistrictAnalysis] = OrderedDict()
_LOCK = threading.Lock()


def analysis_for(district: District) -> DistrictAnalysis:
    """Return the analysis of a loaded district (shared by all its snapshots), made once.

    The snapshots of one loaded district share its walking network object
    (:meth:`geo.District.with_registry`); a district loaded again is analysed afresh. At most
    :data:`MAX_DISTRICTS` are kept, the least recently used dropped first.
    """
    network = district.network
    with _LOCK:
        found = _ANALYSES.get(id(network))
        if found is None or found.network is not network:
            found = DistrictAnalysis(district)
            _ANALYSES[id(network)] = found  # it holds the network: the id stays its own
        _ANALYSES.move_to_end(id(network))
        while len(_ANALYSES) > MAX_DISTRICTS:
            _ANALYSES.popitem(last=False)
        return found


def analysis_of(district: District) -> VersionAnalysis:
    """Return the analysis of a district snapshot: its district's, at its registry version."""
    return analysis_for(district).at(district)


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()
    for analysis in _ANALYSES.values():
        analysis._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
