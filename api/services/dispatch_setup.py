"""Get dispatch ready at startup: precompute the walks from every position."""

from __future__ import annotations

from api.services.matching import position_walk
from geo import District


def prepare_dispatch(district: District) -> None:
    """Walk from every position of the district's current registry once, before any request."""
    position_walk(district)
