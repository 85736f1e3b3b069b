"""The calling user."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ReaderDep, ReadSessionDep
from api.schemas.dispatch import UserPublic
from api.services.signin import describe

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic)
def me(user: ReaderDep, session: ReadSessionDep) -> JSONResponse:
    """Who the bearer token belongs to: role, team or site, masked phone, volunteer, led teams."""
    body = UserPublic(**describe(session, user))
    return JSONResponse(body.model_dump(mode="json"),
                        headers={"Cache-Control": "no-store", "Vary": "Authorization"})
