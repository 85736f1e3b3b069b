"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi

from api.deps import serve_districts
from api.errors import document_problems, register_error_handlers
from api.middleware import PublicGuard
from api.routes import (
    activities,
    auth,
    categories,
    desk,
    docs,
    evidence,
    health,
    menu,
    pages,
    places,
    planning,
    positions,
    requests,
    store,
    teams,
    users,
    volunteers,
)
from api.routes import map as map_routes
from api.services import escalation, outbox
from api.services.dispatch_setup import prepare_dispatch
from api.settings import get_settings
from api.storage.session import session_maker
from api.workload import WorkLimiter


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the served districts and get their storage ready before the first request."""
    settings = get_settings()
    served = serve_districts(app, settings)
    for name in served.names:
        prepare_dispatch(served.current(name))
    app.state.work = WorkLimiter({n: served.base(n) for n in served.names},
                                 slots=settings.expensive_slots, budget_s=settings.work_budget_s)
    stop = None
    if settings.webhook_url:  # the outbox is filled either way; sent only with a webhook
        _, stop = outbox.start_thread(session_maker(settings.resolved_database_url),
                                      settings.webhook_url, settings.webhook_secret,
                                      poll_s=settings.webhook_poll_s,
                                      batch=settings.webhook_batch)
    # Overdue orders climb 站 → 所 → 中心 on their own (api/services/escalation.py).
    stop_escalation = None
    if settings.escalation_poll_s > 0:
        _, stop_escalation = escalation.start_thread(
            session_maker(settings.resolved_database_url), sla=settings.sla_minutes,
            poll_s=settings.escalation_poll_s)
    try:
        yield
    finally:
        if stop is not None:
            stop.set()
        if stop_escalation is not None:
            stop_escalation.set()
        app.state.work.close()


def create_app() -> FastAPI:
    """Build the application with every router and the error table."""
    app = FastAPI(
        title="practice-circle",
        summary="15分钟新时代文明实践服务圈 · 15-minute practice service circle",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from local files by api/routes/docs.py
        redoc_url=None,
    )
    register_error_handlers(app)
    # Phones on slow links: large GeoJSON (cells, gaps, areas) goes compressed; answers that
    # are already gzip-encoded (the map's cached bodies) pass through untouched.
    app.add_middleware(GZipMiddleware, minimum_size=4096)
    # Outermost of our own: rate limits, body cap, security headers (api/middleware.py).
    app.add_middleware(PublicGuard)
    app.include_router(health.router)
    app.include_router(places.router)
    app.include_router(planning.router)
    app.include_router(map_routes.router)
    app.include_router(categories.router)
    app.include_router(requests.router)
    app.include_router(evidence.router)
    app.include_router(desk.router)
    app.include_router(teams.router)
    app.include_router(menu.router)
    app.include_router(positions.router)  # after teams: /teams/nearest before /teams/{id}
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(volunteers.router)
    app.include_router(activities.router)
    app.include_router(store.router)
    app.include_router(pages.router)
    app.include_router(docs.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
