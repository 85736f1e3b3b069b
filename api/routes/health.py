"""Liveness (``/health``) and readiness (``/health/ready``) for people and load balancers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import SettingsDep
from api.storage.health import probe, storage_state

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness: the process answers; the database as the last requests found it."""

    status: Literal["ok", "degraded"] = "ok"
    database: Literal["ok", "unavailable"] = "ok"
    database_error: str | None = None


class Readiness(BaseModel):
    """Readiness: districts loaded and the database usable now."""

    ready: bool
    districts: list[str]
    database: Literal["ok", "unavailable"]
    database_error: str | None = None


# Async and without I/O: the benchmarks' baseline, and it must answer while workers are busy.
@router.get("/health", response_model=Health)
async def health() -> Health:
    """Answer that the service is up, and whether storage faults were seen in the last 30 s."""
    error = storage_state.recent_error()
    if error is None:
        return Health()
    return Health(status="degraded", database="unavailable", database_error=error)


@router.get("/health/ready", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready"}})
async def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    """Probe the database now (a query; SQLite: free disk); 503 when not ready."""
    error = await run_in_threadpool(probe, settings.resolved_database_url)
    served = getattr(request.app.state, "served", None)
    districts = served.names if served is not None else []
    body = Readiness(ready=error is None and bool(districts), districts=districts,
                     database="ok" if error is None else "unavailable", database_error=error)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
