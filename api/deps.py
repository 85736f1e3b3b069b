"""Request dependencies: the loaded district and query parameter groups."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Query

from api.settings import Settings, get_settings
from geo import District, get_district

SettingsDep = Annotated[Settings, Depends(get_settings)]


@lru_cache(maxsize=8)
def load_district(name: str, cache: str) -> District:
    """Load (or build once) a district; kept in memory for the life of the process."""
    from pathlib import Path

    return get_district(name, cache_dir=Path(cache))


def current_district(
    settings: SettingsDep,
    district: Annotated[
        str | None, Query(description="District name (default: the served district)")
    ] = None,
) -> District:
    """Resolve the ``district`` query parameter to a loaded district."""
    return load_district(district or settings.district, str(settings.cache))


DistrictDep = Annotated[District, Depends(current_district)]
