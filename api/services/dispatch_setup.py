"""Get dispatch ready at startup: migrate and seed the database, precompute team walks."""

from __future__ import annotations

from api.services.matching import position_walk
from api.storage.seed import prepare_database
from geo import District


def prepare_dispatch(database_url: str, district: District) -> None:
    """Migrate the database, seed the district's registry, and walk from every position once."""
    prepare_database(database_url, district)
    position_walk(district)
