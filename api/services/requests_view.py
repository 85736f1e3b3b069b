"""Present service requests as a user may see them: contact masked, history and review joined.

Those who see the contact (dispatchers, 所/站, the assigned team) also get the 导航 links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import Role
from api.schemas.cards import NavigationLinks
from api.schemas.dispatch import RequestPublic, ReviewPublic, TeamRef, TransitionPublic
from api.services import navigation
from api.services.evidence import photos_of
from api.services.leaders import led_teams
from api.services.state_machine import merge_ends, next_actions
from api.storage.models import (
    Position,
    Review,
    ServiceRequest,
    Team,
    Transition,
    User,
    as_utc,
)
from geo.categories import category as category_of
from geo.registry import Level


def mask_contact(contact: str) -> str:
    """Hide the middle of a phone number: ``13812341234`` → ``138****1234``."""
    if len(contact) >= 8:
        return contact[:3] + "****" + contact[-4:]
    if len(contact) > 2:
        return contact[0] + "*" * (len(contact) - 2) + contact[-1]
    return "*" * len(contact)


def sees_contact(user: User, req: ServiceRequest, led: frozenset[str] = frozenset()) -> bool:
    """Only dispatchers, 所/站 accounts and the assigned team (or its leader) see the contact.

    A 所/station account only ever reads the orders of its area; ``led`` are the teams a
    volunteer user leads.
    """
    if user.role in (Role.DISPATCHER, Role.STATION):
        return True
    if req.team_id is None:
        return False
    return ((user.role == Role.TEAM and user.team_id == req.team_id)
            or (user.role == Role.VOLUNTEER and req.team_id in led))


def navigation_to(req: ServiceRequest) -> NavigationLinks:
    """Return the 导航 links to an order's place, named by its number (服务地点（订单12）).

    Not "#12": the links cut names at their separators, "#" among them.
    """
    return NavigationLinks(**navigation.links(req.lon, req.lat, name=f"服务地点（订单{req.id}）",
                                              region=req.district))


def area_names(session: Session, reqs: Sequence[ServiceRequest]) -> dict[str, str]:
    """Return the names of the positions answering for the requests, by site id."""
    sites = {r.area_site_id for r in reqs if r.area_site_id}
    if not sites:
        return {}
    return dict(session.execute(
        select(Position.site_id, Position.name).where(Position.site_id.in_(sites))).all())


def present_many(
    session: Session, reqs: Sequence[ServiceRequest], user: User
) -> list[dict[str, Any]]:
    """Return requests as the user may see them (JSON-ready), reading their extras at once."""
    if not reqs:
        return []
    ids = [r.id for r in reqs]
    history: dict[int, list[Transition]] = {i: [] for i in ids}
    for t in session.scalars(
        select(Transition).where(Transition.request_id.in_(ids)).order_by(Transition.id)
    ):
        history[t.request_id].append(t)
    reviews = {
        r.request_id: r for r in session.scalars(select(Review).where(Review.request_id.in_(ids)))
    }
    team_ids = {r.team_id for r in reqs if r.team_id}
    teams = {
        t.team_id: t.name
        for t in session.execute(select(Team.team_id, Team.name).where(Team.team_id.in_(team_ids)))
    } if team_ids else {}
    led = led_teams(session, user)
    areas = area_names(session, reqs)
    photos = photos_of(session, reqs)
    kept = merge_ends(session, reqs)
    out = []
    for r in reqs:
        show = sees_contact(user, r, led)
        rv = reviews.get(r.id)
        pub = RequestPublic(
            id=r.id,
            district=r.district,
            state=r.state,
            state_zh=r.state.zh,
            category=r.category,
            category_zh=category_of(r.category).name,
            description=r.description,
            contact=r.contact if show else mask_contact(r.contact),
            contact_masked=not show,
            lon=r.lon,
            lat=r.lat,
            resident_id=r.resident_id,
            team=TeamRef(team_id=r.team_id, name=teams.get(r.team_id, "")) if r.team_id else None,
            round=r.round,
            hours=r.hours,
            next_actions=next_actions(r.state, user.role),
            created_at=as_utc(r.created_at),
            updated_at=as_utc(r.updated_at),
            review=ReviewPublic(stars=rv.stars, comment=rv.comment, at=as_utc(rv.created_at))
            if rv else None,
            history=[
                TransitionPublic(
                    action=t.action, from_state=t.from_state, to_state=t.to_state,
                    actor_id=t.actor_id, actor_role=t.actor_role, team_id=t.team_id,
                    note=t.note, at=as_utc(t.at),
                )
                for t in history[r.id]
            ],
            reject_reason=r.reject_reason,
            merged_into=r.merged_into,
            merged_into_state=kept.get(r.id),
            merged_into_state_zh=kept[r.id].zh if r.id in kept else None,
            level=r.level,
            level_zh=Level(r.level).short if r.level else None,
            area_site_id=r.area_site_id,
            area_name=areas.get(r.area_site_id) if r.area_site_id else None,
            photos=photos[r.id],
            # Who may call the resident may walk there; others see the point, not a hand-off.
            navigation=navigation_to(r) if show else None,
        )
        out.append(pub.model_dump(mode="json"))
    return out


def present(session: Session, req: ServiceRequest, user: User) -> dict[str, Any]:
    """Return a request as the user may see it (JSON-ready)."""
    return present_many(session, [req], user)[0]
