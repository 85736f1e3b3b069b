"""The districts a server serves, each at the current version of its registry.

A served district is its OSM-derived part (network, grid, candidate places, demand: loaded once
from the cache at start) joined with its registry read from the database. Every request asks the
database for the registry's version (one indexed row) and, when another worker or the CLI has
changed the registry, reads it again and makes a new :class:`geo.District` snapshot. No
restart, every worker.

Each served district has one analysis (:mod:`api.services.analysis`): what its OSM part gives
(the walking network of each profile, residents, the basemap) is kept as long as it is served,
and what its registry gives (coverage, walks, map bodies) per registry version, the current
and the previous one; :meth:`ServedDistricts.analysis` hands it out.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from api.services.analysis import VersionAnalysis, analysis_for, analysis_of
from api.storage.registry import read_registry, registry_version
from api.storage.session import session_maker
from geo import District, UnknownDistrictError


@dataclass
class ServedDistrict:
    """One served district: its OSM part from the cache and its current registry snapshot."""

    base: District
    current: District
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ServedDistricts:
    """The served districts of one app, by exact name, kept at their registry's version.

    Parameters
    ----------
    districts
        Loaded districts by name (the first is the default).
    database_url
        Where their registries live (migrated and seeded before this is made).
    """

    def __init__(self, districts: dict[str, District], database_url: str) -> None:
        self.database_url = database_url
        self._served = {name: ServedDistrict(base=d, current=d) for name, d in districts.items()}
        for name in self._served:
            self.refresh(name)

    @property
    def names(self) -> list[str]:
        """The served names, the default first."""
        return list(self._served)

    def _entry(self, name: str | None) -> ServedDistrict:
        if name is None:
            return next(iter(self._served.values()))
        entry = self._served.get(name)
        if entry is None:
            msg = f"本服务没有名为 {name!r} 的区县；可选：{', '.join(self._served)}"
            raise UnknownDistrictError(msg)
        return entry

    def base(self, name: str | None = None) -> District:
        """Return a district's OSM part (its registry as first generated)."""
        return self._entry(name).base

    def current(self, name: str | None = None) -> District:
        """Return a district at its registry's current version (reading it again if changed).

        Raises
        ------
        UnknownDistrictError
            If no served district has exactly this name.
        """
        entry = self._entry(name)
        with session_maker(self.database_url, single_statement=True)() as session:
            version = registry_version(session, entry.base.name)
        if version != entry.current.registry_version:
            self.refresh(entry.base.name)
        return entry.current

    def analysis(self, name: str | None = None) -> VersionAnalysis:
        """Return a district's analysis at its registry's current version.

        Raises
        ------
        UnknownDistrictError
            If no served district has exactly this name.
        """
        return analysis_of(self.current(name))

    def refresh(self, name: str) -> District:
        """Read a district's registry now and make it the current snapshot."""
        entry = self._entry(name)
        with entry.lock:
            with session_maker(self.database_url, readonly=True)() as session:
                registry = read_registry(session, name)
            if registry.version != entry.current.registry_version or entry.current is entry.base:
                entry.current = entry.base.with_registry(
                    registry.positions, registry.teams, version=registry.version
                )
                # The new version becomes the analysis's current one; the oldest beyond the
                # previous is dropped now, not when a request first asks.
                analysis_for(entry.base).at(entry.current)
        return entry.current
