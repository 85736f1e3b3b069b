"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness answer."""

    status: str = "ok"


@router.get("/health", response_model=Health)
def health() -> Health:
    """Answer that the service is up."""
    return Health()
