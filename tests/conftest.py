"""Shared fixtures: one built district cache for the whole session, and the bundled OSM XML."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import data.loaders
import geo
from geo.district import get_district, load_district

_BUILT = pytest.StashKey["geo.District"]()


@pytest.fixture(scope="session")
def cache_dir(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Path]:
    """A cache directory holding the default district, built once per session.

    ``PRACTICE_CIRCLE_CACHE`` points at it for the session (subprocesses such as CLI tests
    inherit it) and is restored afterwards.
    """
    path = tmp_path_factory.mktemp("practice-circle-cache")
    old = os.environ.get("PRACTICE_CIRCLE_CACHE")
    # Set before building: the extract footprint is cached in the default cache directory.
    os.environ["PRACTICE_CIRCLE_CACHE"] = str(path)
    try:
        pytestconfig.stash[_BUILT] = get_district(geo.DEFAULT_DISTRICT, cache_dir=path)
        yield path
    finally:
        if old is None:
            os.environ.pop("PRACTICE_CIRCLE_CACHE", None)
        else:
            os.environ["PRACTICE_CIRCLE_CACHE"] = old


@pytest.fixture(scope="session")
def built_district(cache_dir: Path, pytestconfig: pytest.Config) -> geo.District:
    """The default district as :func:`geo.get_district` built it (before any cache round trip)."""
    return pytestconfig.stash[_BUILT]


@pytest.fixture(scope="session")
def district(cache_dir: Path) -> geo.District:
    """The default district loaded from the session cache; shared, so do not modify it."""
    return load_district(geo.DEFAULT_DISTRICT, cache_dir)


@pytest.fixture(scope="session")
def osm_xml() -> Path:
    """The bundled real OSM XML export (Beijing Haidian, around the CAU campus)."""
    path = Path(data.loaders.HAIDIAN_OSM)
    assert path.is_file(), path
    return path
