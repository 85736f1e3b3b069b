"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from api.deps import load_district
from api.errors import register_error_handlers
from api.routes import categories, health, places, planning, requests, teams, users
from api.routes import map as map_routes
from api.services.dispatch_setup import prepare_dispatch
from api.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the served district before the first request."""
    settings = get_settings()
    district = load_district(settings.district, str(settings.cache))
    prepare_dispatch(settings.resolved_database_url, district)
    yield


def create_app() -> FastAPI:
    """Build the application with every router and the error table."""
    app = FastAPI(
        title="practice-circle",
        summary="15分钟新时代文明实践服务圈 · 15-minute practice service circle",
        version="0.1.0",
        lifespan=lifespan,
    )
    register_error_handlers(app)
    # Phones on slow links: large GeoJSON (cells, gaps, areas) goes compressed; answers that
    # are already gzip-encoded (the map's cached bodies) pass through untouched.
    app.add_middleware(GZipMiddleware, minimum_size=4096)
    app.include_router(health.router)
    app.include_router(places.router)
    app.include_router(planning.router)
    app.include_router(map_routes.router)
    app.include_router(categories.router)
    app.include_router(requests.router)
    app.include_router(teams.router)
    app.include_router(users.router)
    return app


app = create_app()
