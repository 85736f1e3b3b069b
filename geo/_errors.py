"""Named errors raised by the spatial model."""

from __future__ import annotations


class OSMDataError(ValueError):
    """An OSM file is not OSM XML, is empty or truncated, or holds no walkable ways."""


class UnknownDistrictError(LookupError):
    """A district name that is neither bundled nor imported."""


class UnknownCategoryError(ValueError):
    """A service category code that is not one of the 8+N categories."""


class OutOfAreaError(ValueError):
    """A position that lies outside the district's walking network."""


class DemandFileError(ValueError):
    """A residents file that cannot be read, or lacks a geometry or a count column."""


class UnknownProfileError(ValueError):
    """A walking profile name that is not one of the known profiles."""


class SitingError(ValueError):
    """A siting request that cannot be met (e.g. more new sites than candidate places)."""


class AmbiguousDistrictError(ValueError):
    """A district name shared by several county-level units (城关区): give the city or adcode."""


class OutlineError(ValueError):
    """An outline file that cannot be read or holds no polygon."""
