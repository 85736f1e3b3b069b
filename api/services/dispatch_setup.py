"""Get dispatch ready at startup: precompute the walks from every position, place old orders."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.domain import OPEN_STATES
from api.services.escalation import assign_area
from api.services.matching import position_walk
from api.storage.models import ServiceRequest
from api.storage.session import session_maker
from geo import District, OutOfAreaError

log = logging.getLogger(__name__)


def prepare_dispatch(
    district: District, session_factory: Callable[[], Session] | None = None
) -> int:
    """Walk from every position of the district's registry once, before any request.

    Then give every open order of the district that no level answers for yet (made before the
    所站 rules, migration 0007) the position that answers for it now (:func:`assign_area`), its
    SLA clock running from its creation (it has waited that long); see :func:`place_open_orders`.

    Parameters
    ----------
    district
        A served district.
    session_factory
        Sessions on the service's database (default: the one the settings name).

    Returns
    -------
    int
        How many orders were placed.
    """
    position_walk(district)
    if session_factory is None:
        from api.settings import get_settings

        session_factory = session_maker(get_settings().resolved_database_url)
    with session_factory() as session, session.begin():
        return place_open_orders(session, district)


def place_open_orders(session: Session, district: District) -> int:
    """Place the district's open orders that have no level (in the caller's transaction).

    Each is written only while it still has none, so two workers starting together place an
    order once; its version is left alone (no move was made), so no one's move is refused.
    """
    rows = session.execute(
        select(ServiceRequest.id, ServiceRequest.lon, ServiceRequest.lat,
               ServiceRequest.created_at)
        .where(ServiceRequest.district == district.name,
               ServiceRequest.state.in_(sorted(OPEN_STATES)),
               ServiceRequest.level.is_(None))
        .order_by(ServiceRequest.id)).all()
    walk, placed = position_walk(district), 0
    for rid, lon, lat, created in rows:
        try:
            level, site = assign_area(district, walk.attach(lon, lat))
        except OutOfAreaError:  # off today's streets: left for the dispatchers, as before
            log.warning("open order %d is off the walking network: not placed", rid)
            continue
        if level is None:
            continue
        placed += session.execute(
            update(ServiceRequest)
            .where(ServiceRequest.id == rid, ServiceRequest.level.is_(None))
            .values(level=level, area_site_id=site, level_since=created)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    if placed:
        log.info("placed %d open orders of %s with the position answering for them",
                 placed, district.name)
    return placed
