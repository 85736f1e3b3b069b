"""Sign in on a phone with a one-time code (手机号 + 验证码), and describe the signed-in user.

``POST /auth/codes`` makes a 6-digit code (``secrets``) for a mainland mobile number and sends
it: with a webhook configured, as an outbox event ``auth.code`` (audience ``phone``, the whole
number in the subject for the SMS gateway) written in the same transaction as the code; without
one, as a WARNING line ``一次性验证码 138****1234: 123456`` on the ``practice_circle`` logger,
for local use only. The answer is the same whether or not the number belongs to anybody, so it
tells nobody who has an account.

A code is stored only as a keyed hash (HMAC-SHA256 under the signing key) beside the phone's
keyed hash; it works for ``signin_code_minutes``, once, and for at most ``signin_max_tries``
tries; asking for another code for the same number within ``signin_resend_s`` is refused (429
``code_too_soon``). These rules live in database rows, so they hold across workers; a new code
replaces the previous one.

``POST /auth/sessions`` checks the code and signs in: the user with that phone; else the
volunteer registered with that number (whose user is given the phone); else a new resident
named ``居民1234`` (the last four digits). Signing in issues a new bearer token and so ends the
session on the device used before (one token per user).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from api.domain import Role
from api.services import outbox
from api.services.accounts import (
    create_user,
    hash_phone,
    mask_phone,
    normalise_phone,
    rotate_token,
    set_phone,
    signing_key,
)
from api.services.dispatch_errors import DispatchError, ForbiddenError, UnauthorizedError
from api.services.leaders import led_teams
from api.settings import get_settings
from api.storage.models import SignInCode, User, Volunteer, as_utc, utcnow
from geo import District

log = logging.getLogger("practice_circle")
#: Digits of a sign-in code.
CODE_DIGITS = 6
#: Codes expired for longer than this are swept when a new code is made.
SWEEP_AFTER = timedelta(days=1)


class InvalidPhoneError(DispatchError):
    """Not a mainland China mobile number."""


class CodeTooSoonError(DispatchError):
    """Another code was sent to this number less than ``signin_resend_s`` ago."""


class BadSignInCodeError(UnauthorizedError):
    """The code is wrong, expired, used, or tried too often (one answer for all: no hints)."""


@dataclass(frozen=True)
class CodeSent:
    """The answer to a code request (the same for every valid number)."""

    expires_in_s: int
    resend_after_s: int


def _phone(text_: str) -> str:
    from api.services.volunteers import InvalidVolunteerError

    try:
        return normalise_phone(text_)
    except InvalidVolunteerError as e:
        raise InvalidPhoneError(str(e), field="phone") from None


def _code_hash(phone_hash: str, code: str) -> str:
    message = f"signin:{phone_hash}:{code}".encode()
    return hmac.new(signing_key(), message, hashlib.sha256).hexdigest()


def _lock_phone(session: Session, phone_hash: str) -> None:
    """Serialize code requests and tries of one phone (PostgreSQL; SQLite writes one at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                        {"k": "signin:" + phone_hash})


def code_message(code: str, minutes: float) -> str:
    """Return the SMS text of a code (zh-CN)."""
    return (f"【15分钟文明实践】您的登录验证码为 {code}，{minutes:g}分钟内有效，"
            f"请勿告诉他人。")


def request_code(session: Session, phone: str, *, now: datetime | None = None) -> CodeSent:
    """Make and send a sign-in code for a phone number (in the caller's transaction).

    Raises
    ------
    InvalidPhoneError
        If the number is not a mainland mobile number.
    CodeTooSoonError
        If a code went to this number less than ``signin_resend_s`` ago (``Retry-After``).
    """
    settings = get_settings()
    now = now or utcnow()
    number = _phone(phone)
    digest = hash_phone(number)
    _lock_phone(session, digest)
    last = session.scalar(select(SignInCode.created_at).where(SignInCode.phone_hash == digest)
                          .order_by(SignInCode.created_at.desc()).limit(1))
    resend = timedelta(seconds=settings.signin_resend_s)
    if last is not None and as_utc(last) + resend > now:
        wait = math.ceil((as_utc(last) + resend - now).total_seconds())
        msg = f"验证码已发送，请 {wait} 秒后再试"
        raise CodeTooSoonError(msg, headers={"Retry-After": str(wait)}, retry_after_s=wait)
    # The newest code is the only one that works; codes long expired go for everyone.
    session.execute(delete(SignInCode).where(SignInCode.phone_hash == digest))
    session.execute(delete(SignInCode).where(SignInCode.expires_at < now - SWEEP_AFTER))
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    ttl = timedelta(minutes=settings.signin_code_minutes)
    session.add(SignInCode(phone_hash=digest, code_hash=_code_hash(digest, code),
                           created_at=now, expires_at=now + ttl, attempts=0))
    if settings.webhook_url:
        outbox.record(session, outbox.AUTH_CODE,
                      {"phone": number, "audience": "phone",
                       "expires_at": (now + ttl).isoformat()},
                      code_message(code, settings.signin_code_minutes), at=now,
                      audience="phone")
    else:  # local use: no SMS gateway, so the code is read from the server log
        log.warning("一次性验证码 %s: %s", mask_phone(number), code)
    session.flush()
    return CodeSent(expires_in_s=math.ceil(ttl.total_seconds()),
                    resend_after_s=math.ceil(resend.total_seconds()))


def _user_for(session: Session, district: District, number: str, digest: str) -> User:
    user = session.scalar(select(User).where(User.phone_hash == digest))
    if user is not None:
        return user
    volunteer = session.scalar(
        select(Volunteer).where(Volunteer.phone == number)
        .order_by(Volunteer.district != district.name, Volunteer.id).limit(1))
    if volunteer is not None:
        user = session.get(User, volunteer.user_id)
        if user is not None:
            if user.phone_hash is None:
                set_phone(session, user, number)
            return user
    user, _ = create_user(session, role=Role.RESIDENT, name=f"居民{number[-4:]}", phone=number)
    return user


def sign_in(session: Session, district: District, phone: str, code: str, *,
            now: datetime | None = None) -> tuple[User, str]:
    """Check a code and sign its phone's user in; return the user and a new token.

    A wrong code counts as a try: this function commits that before raising, so the count
    holds whatever the caller does next. On success the caller commits.

    Raises
    ------
    InvalidPhoneError
        If the number is not a mainland mobile number.
    BadSignInCodeError
        If there is no working code for the number or the code is not it.
    ForbiddenError
        If the phone's account is deactivated.
    """
    settings = get_settings()
    now = now or utcnow()
    number = _phone(phone)
    digest = hash_phone(number)
    _lock_phone(session, digest)
    row = session.scalar(select(SignInCode).where(SignInCode.phone_hash == digest)
                         .order_by(SignInCode.created_at.desc(), SignInCode.id.desc()).limit(1))
    bad = "验证码错误或已失效，请重新获取"
    if (row is None or row.used_at is not None or as_utc(row.expires_at) <= now
            or row.attempts >= settings.signin_max_tries):
        raise BadSignInCodeError(bad)
    if not hmac.compare_digest(row.code_hash, _code_hash(digest, code.strip())):
        row.attempts += 1
        session.commit()
        raise BadSignInCodeError(bad)
    row.used_at = now
    user = _user_for(session, district, number, digest)
    if not user.active:
        session.commit()  # the code is spent either way
        msg = "该账户已停用，请联系管理员"
        raise ForbiddenError(msg)
    token = rotate_token(user)
    session.flush()
    return user, token


def describe(session: Session, user: User) -> dict[str, Any]:
    """Describe a user for themselves: role, team or site, masked phone, volunteer, led teams."""
    volunteer_id = session.scalar(select(Volunteer.id).where(Volunteer.user_id == user.id))
    # a team account *is* its team; "leads" lists the teams a volunteer leads
    leads = sorted(led_teams(session, user)) if user.role == Role.VOLUNTEER else []
    return {"id": user.id, "name": user.name, "role": user.role, "role_zh": user.role.zh,
            "team_id": user.team_id, "site_id": user.site_id, "phone_masked": user.phone_masked,
            "volunteer_id": volunteer_id, "leads_teams": leads}
