"""Phone sign-in: ask for a one-time code, trade it for a bearer token, sign out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import DistrictDep, SessionDep, WriterDep
from api.schemas.auth import CodeRequest, CodeSent, SessionCreate, SessionCreated
from api.schemas.dispatch import UserPublic
from api.services import signin
from api.services.accounts import end_session

router = APIRouter(prefix="/auth", tags=["auth"])
_PRIVATE = {"Cache-Control": "no-store"}
_PROBLEM: dict[str, Any] = {"description": "Problem (application/problem+json)"}


@router.post("/codes", status_code=202, response_model=CodeSent, responses={
    422: {**_PROBLEM, "description": "invalid_phone"},
    429: {**_PROBLEM, "description": "code_too_soon, code_quota, signin_locked or "
                                     "rate_limited (with Retry-After)"},
    503: {**_PROBLEM, "description": "sms_unavailable: no SMS gateway (webhook) configured"},
})
def send_code(body: CodeRequest, session: SessionDep) -> JSONResponse:
    """Send a 6-digit sign-in code to a phone (SMS through the webhook).

    The answer is the same whether or not the number has an account. Limits, all answered
    429 with ``Retry-After``: one code per number per ``signin_resend_s`` (``code_too_soon``),
    ``signin_codes_per_day`` per number in 24 h (``code_quota``), none while the number is
    locked after ``signin_max_wrong_per_day`` wrong codes in 24 h (``signin_locked``), and
    ``rate_limit_signin`` per client address (``rate_limited``). Without a webhook the code is
    written to the server log only if ``PRACTICE_CIRCLE_SIGNIN_LOG_CODES=true`` (local use);
    otherwise 503 ``sms_unavailable``.
    """
    sent = signin.request_code(session, body.phone)
    session.commit()
    answer = CodeSent(expires_in_s=sent.expires_in_s, resend_after_s=sent.resend_after_s)
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=_PRIVATE)


@router.post("/sessions", response_model=SessionCreated, responses={
    401: {**_PROBLEM, "description": "bad_code: wrong, expired or used code, or too many tries"},
    403: {**_PROBLEM, "description": "account_revoked (deactivated, or token revoked by an "
                                     "admin), or not_staff (for=desk)"},
    429: {**_PROBLEM, "description": "signin_locked (with Retry-After)"},
})
def create_session(body: SessionCreate, district: DistrictDep,
                   session: SessionDep) -> JSONResponse:
    """Sign in with the code: a new bearer token.

    One token per user: signing in on another device signs the device used before out, and
    replaces a token issued by ``practice-circle users create/rotate``. With ``"for": "desk"``
    only an existing dispatcher, station or admin account signs in (403 ``not_staff``
    otherwise, before any token changes). 401 ``bad_code`` for a wrong, expired or used code,
    or after too many tries; each wrong code counts towards the number's daily lock
    (429 ``signin_locked``). A user whose token an admin revoked (``users revoke``) is refused
    (403 ``account_revoked``) until ``users rotate``.
    """
    user, token = signin.sign_in(session, district, body.phone, body.code,
                                 desk=body.for_ == "desk")
    session.commit()
    answer = SessionCreated(token=token, user=UserPublic(**signin.describe(session, user)))
    return JSONResponse(answer.model_dump(mode="json"), headers=_PRIVATE)


@router.delete("/sessions", status_code=204, responses={
    401: {**_PROBLEM, "description": "unauthorized: no token, or one that no longer works"},
})
def delete_session(session: SessionDep, user: WriterDep) -> Response:
    """Sign out: the caller's bearer token stops working at once.

    The user may sign in again by code; this is no lock-out (``users revoke`` is).
    """
    end_session(user)
    session.commit()
    return Response(status_code=204, headers=_PRIVATE)
