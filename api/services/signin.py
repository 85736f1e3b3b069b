"""Sign in on a phone with a one-time code (手机号 + 验证码), and describe the signed-in user.

``POST /auth/codes`` makes a 6-digit code (``secrets``) for a mainland mobile number and sends
it: with a webhook configured, as an outbox event ``auth.code`` (audience ``phone``, the whole
number in the subject for the SMS gateway) written in the same transaction as the code. Without
one, only when ``signin_log_codes`` is on (local use: ``make run`` sets it), as a WARNING line
``一次性验证码 138****1234: 123456`` on the ``practice_circle`` logger; else the service fails
closed (503 ``sms_unavailable``). The answer is the same whether or not the number belongs to
anybody, so it tells nobody who has an account.

A code is stored only as a keyed hash (HMAC-SHA256 under the signing key) beside the phone's
keyed hash; it works for ``signin_code_minutes``, once, and for at most ``signin_max_tries``
tries; a new code supersedes the previous one (which is kept, expired, for the counts below).
Per phone, over the last 24 hours (:data:`WINDOW`, counted by the codes' creation times):

* one code per ``signin_resend_s`` (429 ``code_too_soon``) and at most ``signin_codes_per_day``
  codes (429 ``code_quota``);
* at most ``signin_max_wrong_per_day`` wrong tries, whichever codes they were made on: then the
  number is locked (429 ``signin_locked``, both for new codes and for signing in, even with a
  right code) until enough of those tries are 24 hours old. Asking for a new code does not reset
  the count. (Anyone can lock a number this way for a day; that is the price of a bound on
  guessing: at most 10 guesses a day against 10^6 codes.)

These rules live in database rows, so they hold across workers. Rows older than a day are
deleted whenever a code is made. Each client address may also ask for only
``rate_limit_signin`` codes (api/middleware.py).

``POST /auth/sessions`` checks the code and signs in: the user with that phone; else the
volunteer registered with that number (whose user is given the phone); else a new resident
named ``居民1234`` (the last four digits). A user whose token an admin revoked (``practice-circle
users revoke``) or who is deactivated is refused (403 ``account_revoked``) until ``users
rotate``. Signing in for the desk (``for="desk"``) finds but never makes a user, and refuses
any role but dispatcher, station or admin (403 ``not_staff``) before a token changes. Signing
in issues a new bearer token and so ends the session on the device used before (one token per
user); ``DELETE /auth/sessions`` ends the caller's session.
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

from sqlalchemy import delete, select, text, update
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
from api.services.desk_queue import DESK_ROLES
from api.services.dispatch_errors import DispatchError, ForbiddenError, UnauthorizedError
from api.services.leaders import led_teams
from api.settings import get_settings
from api.storage.models import SignInCode, User, Volunteer, as_utc, utcnow
from geo import District

log = logging.getLogger("practice_circle")
#: Digits of a sign-in code.
CODE_DIGITS = 6
#: The rolling window of the per-phone counts; older code rows are deleted.
WINDOW = timedelta(days=1)


class InvalidPhoneError(DispatchError):
    """Not a mainland China mobile number."""


class CodeTooSoonError(DispatchError):
    """Another code was sent to this number less than ``signin_resend_s`` ago."""


class BadSignInCodeError(UnauthorizedError):
    """The code is wrong, expired, used, or tried too often (one answer for all: no hints)."""


class CodeQuotaError(DispatchError):
    """The number had ``signin_codes_per_day`` codes in the last 24 hours."""


class SignInLockedError(DispatchError):
    """The number had ``signin_max_wrong_per_day`` wrong codes in the last 24 hours."""


class SmsUnavailableError(DispatchError):
    """No webhook (SMS gateway) is configured and logging codes is off: nothing can be sent."""


class NotStaffError(ForbiddenError):
    """Signing in for the desk with an account that is not a dispatcher, station or admin."""


class AccountRevokedError(ForbiddenError):
    """The phone's account is deactivated or its token was revoked by an admin."""


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


def _wait_zh(seconds: int) -> str:
    """Say a wait in zh-CN: 40 秒, 12 分钟, 3 小时 (rounded up)."""
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} 分钟"
    return f"{math.ceil(seconds / 3600)} 小时"


def _until(at: datetime, now: datetime) -> int:
    return max(1, math.ceil((at - now).total_seconds()))


def _recent(session: Session, digest: str, now: datetime) -> list[tuple[datetime, int]]:
    """Return (created_at, wrong tries) of the phone's codes of the last day, oldest first."""
    rows = session.execute(
        select(SignInCode.created_at, SignInCode.attempts)
        .where(SignInCode.phone_hash == digest, SignInCode.created_at > now - WINDOW)
        .order_by(SignInCode.created_at, SignInCode.id)).all()
    return [(as_utc(created), int(attempts or 0)) for created, attempts in rows]


def _check_lock(recent: list[tuple[datetime, int]], now: datetime) -> None:
    """Raise :class:`SignInLockedError` if the phone had too many wrong tries in the window."""
    limit = get_settings().signin_max_wrong_per_day
    wrong = sum(tries for _, tries in recent)
    if wrong < limit:
        return
    wait = _until(recent[-1][0] + WINDOW, now)
    for created, tries in recent:  # oldest first: when enough tries have aged out
        wrong -= tries
        if wrong < limit:
            wait = _until(created + WINDOW, now)
            break
    msg = f"该手机号验证码错误次数过多，已暂停登录，请 {_wait_zh(wait)}后再试"
    raise SignInLockedError(msg, headers={"Retry-After": str(wait)}, retry_after_s=wait)


def request_code(session: Session, phone: str, *, now: datetime | None = None) -> CodeSent:
    """Make and send a sign-in code for a phone number (in the caller's transaction).

    Raises
    ------
    InvalidPhoneError
        If the number is not a mainland mobile number.
    SmsUnavailableError
        If there is no webhook and ``signin_log_codes`` is off.
    SignInLockedError
        If the number had too many wrong codes in the last 24 hours (``Retry-After``).
    CodeTooSoonError
        If a code went to this number less than ``signin_resend_s`` ago (``Retry-After``).
    CodeQuotaError
        If the number had ``signin_codes_per_day`` codes in the last 24 hours (``Retry-After``).
    """
    settings = get_settings()
    now = now or utcnow()
    number = _phone(phone)
    if not settings.webhook_url and not settings.signin_log_codes:
        msg = "短信服务未配置，暂时无法发送验证码，请联系管理员"
        raise SmsUnavailableError(msg)
    digest = hash_phone(number)
    _lock_phone(session, digest)
    recent = _recent(session, digest, now)
    _check_lock(recent, now)
    resend = timedelta(seconds=settings.signin_resend_s)
    if recent and recent[-1][0] + resend > now:
        wait = _until(recent[-1][0] + resend, now)
        msg = f"验证码已发送，请 {wait} 秒后再试"
        raise CodeTooSoonError(msg, headers={"Retry-After": str(wait)}, retry_after_s=wait)
    quota = settings.signin_codes_per_day
    if len(recent) >= quota:
        wait = _until(recent[len(recent) - quota][0] + WINDOW, now)
        msg = f"该手机号今日获取验证码次数已达 {quota} 次，请 {_wait_zh(wait)}后再试"
        raise CodeQuotaError(msg, headers={"Retry-After": str(wait)}, retry_after_s=wait)
    # The newest code is the only one that works: earlier ones expire now but stay (their
    # tries count for a day); rows older than the window go, for every phone.
    session.execute(update(SignInCode)
                    .where(SignInCode.phone_hash == digest, SignInCode.expires_at > now)
                    .values(expires_at=now))
    session.execute(delete(SignInCode).where(SignInCode.created_at < now - WINDOW))
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
    else:  # local use (signin_log_codes): no SMS gateway, the code is read from the server log
        log.warning("一次性验证码 %s: %s", mask_phone(number), code)
    session.flush()
    return CodeSent(expires_in_s=math.ceil(ttl.total_seconds()),
                    resend_after_s=math.ceil(resend.total_seconds()))


def _existing_user(session: Session, district: District, number: str,
                   digest: str) -> tuple[User | None, Volunteer | None]:
    """Return the user with the phone, else the user of a volunteer with that number (and it)."""
    user = session.scalar(select(User).where(User.phone_hash == digest))
    if user is not None:
        return user, None
    volunteer = session.scalar(
        select(Volunteer).where(Volunteer.phone == number)
        .order_by(Volunteer.district != district.name, Volunteer.id).limit(1))
    if volunteer is None:
        return None, None
    return session.get(User, volunteer.user_id), volunteer


def _user_for(session: Session, district: District, number: str, digest: str) -> User:
    user, volunteer = _existing_user(session, district, number, digest)
    if user is not None:
        if volunteer is not None and user.phone_hash is None:
            set_phone(session, user, number)
        return user
    user, _ = create_user(session, role=Role.RESIDENT, name=f"居民{number[-4:]}", phone=number)
    return user


def sign_in(session: Session, district: District, phone: str, code: str, *,
            desk: bool = False, now: datetime | None = None) -> tuple[User, str]:
    """Check a code and sign its phone's user in; return the user and a new token.

    A wrong code counts as a try: this function commits that before raising, so the count
    holds whatever the caller does next. A right code is spent (committed) also when the
    account is then refused. On success the caller commits.

    Parameters
    ----------
    desk
        Signing in for the dispatcher's desk: only an existing dispatcher, station or admin
        account may; nobody is made a resident.

    Raises
    ------
    InvalidPhoneError
        If the number is not a mainland mobile number.
    SignInLockedError
        If the number had too many wrong codes in the last 24 hours (``Retry-After``).
    BadSignInCodeError
        If there is no working code for the number or the code is not it.
    AccountRevokedError
        If the phone's account is deactivated or its token was revoked (``users revoke``).
    NotStaffError
        If ``desk`` and the phone's account is not a desk role (no token changed).
    """
    settings = get_settings()
    now = now or utcnow()
    number = _phone(phone)
    digest = hash_phone(number)
    _lock_phone(session, digest)
    _check_lock(_recent(session, digest, now), now)
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
    if desk:
        user, _ = _existing_user(session, district, number, digest)
    else:
        user = _user_for(session, district, number, digest)
    if user is not None and (not user.active or user.token_revoked_at is not None):
        session.commit()  # the code is spent either way
        msg = "账户已被停用，请联系管理员恢复"
        raise AccountRevokedError(msg)
    if desk and (user is None or user.role not in DESK_ROLES):
        session.commit()
        role = (user.role if user is not None else Role.RESIDENT).zh
        msg = f"「{role}」账号不能使用派单工作台，请用调度员、管理员或所站账号登录"
        raise NotStaffError(msg)
    assert user is not None
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
