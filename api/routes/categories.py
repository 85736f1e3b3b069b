"""The 8+N volunteer service categories."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.schemas.dispatch import CategoryList
from api.services.team_views import categories_list

router = APIRouter(tags=["categories"])


@router.get("/categories", response_model=CategoryList)
def categories() -> dict[str, Any]:
    """List the 8 national service categories and the local extras (code, zh-CN name)."""
    return categories_list()
