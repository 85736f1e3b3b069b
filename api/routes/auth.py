"""Phone sign-in: ask for a one-time code, then trade it for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DistrictDep, SessionDep
from api.schemas.auth import CodeRequest, CodeSent, SessionCreate, SessionCreated
from api.schemas.dispatch import UserPublic
from api.services import signin

router = APIRouter(prefix="/auth", tags=["auth"])
_PRIVATE = {"Cache-Control": "no-store"}


@router.post("/codes", status_code=202, response_model=CodeSent)
def send_code(body: CodeRequest, session: SessionDep) -> JSONResponse:
    """Send a 6-digit sign-in code to a phone (SMS through the webhook; else the server log).

    The answer is the same whether or not the number has an account; 429 ``code_too_soon``
    within ``signin_resend_s`` of the previous code.
    """
    sent = signin.request_code(session, body.phone)
    session.commit()
    answer = CodeSent(expires_in_s=sent.expires_in_s, resend_after_s=sent.resend_after_s)
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=_PRIVATE)


@router.post("/sessions", response_model=SessionCreated)
def create_session(body: SessionCreate, district: DistrictDep,
                   session: SessionDep) -> JSONResponse:
    """Sign in with the code: a new bearer token (the device signed in before is signed out).

    401 ``bad_code`` for a wrong, expired or used code, or after too many tries.
    """
    user, token = signin.sign_in(session, district, body.phone, body.code)
    session.commit()
    answer = SessionCreated(token=token, user=UserPublic(**signin.describe(session, user)))
    return JSONResponse(answer.model_dump(mode="json"), headers=_PRIVATE)
