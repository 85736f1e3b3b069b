"""The calling user."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReaderDep
from api.schemas.dispatch import UserPublic

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic)
def me(user: ReaderDep) -> UserPublic:
    """Who the bearer token belongs to."""
    return UserPublic(id=user.id, name=user.name, role=user.role, team_id=user.team_id)
