"""Create users and check their bearer tokens (kept only as SHA-256 hashes).

A token works for ``token_ttl_days`` (a setting) after it was issued, until it is revoked
(``practice-circle users revoke``, which also keeps the user from signing in by code until
``users rotate``), replaced (``practice-circle users rotate``, or signing in with a one-time
code, api/services/signin.py: one token per user, so signing in on another device signs the
old one out) or ended by signing out (``DELETE /auth/sessions``).

A user may have a mainland mobile number to sign in with. It is kept only as a keyed hash
(HMAC-SHA256 under the signing key, ``PRACTICE_CIRCLE_SIGNING_KEY`` or ``<cache>/signing.key``)
beside its masked form ``138****1234``: a copy of the database alone does not give the numbers
back, even by trying all of them. Changing the signing key orphans the stored hashes (users
would sign in as new residents), so it is kept with the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import Role
from api.services.dispatch_errors import NotFoundError, UnauthorizedError
from api.services.keys import secret_key
from api.settings import get_settings
from api.storage.models import Position, Team, User, as_utc, utcnow
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from geo import District
from geo.registry import Level

TOKEN_PREFIX = "pc_"
#: Levels of the positions a ``station`` account may stand for: a 所 or a 站.
STATION_LEVELS = (Level.TOWNSHIP, Level.COMMUNITY)


def new_token() -> str:
    """Make a fresh random API token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@cache
def _signing_key(setting: str, cache_dir: str) -> bytes:
    return secret_key(setting, cache=Path(cache_dir), name="signing")


def signing_key() -> bytes:
    """Return the service's HMAC key (``PRACTICE_CIRCLE_SIGNING_KEY`` or the key file)."""
    settings = get_settings()
    return _signing_key(settings.signing_key, str(settings.cache))


def hash_phone(number: str) -> str:
    """Return the stored form of a normalised 11-digit mobile number (keyed, hex)."""
    return hmac.new(signing_key(), b"phone:" + number.encode(), hashlib.sha256).hexdigest()


def normalise_phone(text: str) -> str:
    """Return a mainland mobile number as 11 digits, checked as volunteers' phones are.

    Raises
    ------
    InvalidVolunteerError
        If it is not a valid mainland China mobile number.
    """
    from api.services.volunteers import mobile_number  # volunteers imports this module

    return mobile_number(text)


def mask_phone(number: str) -> str:
    """Show a number as ``138****1234`` (as a request's contact is masked)."""
    from api.services.requests_view import mask_contact

    return mask_contact(number)


def set_phone(session: Session, user: User, number: str) -> None:
    """Give a user a (normalised) phone number to sign in with: its hash and masked form.

    Raises
    ------
    ValueError
        If another user signs in with this number already.
    """
    digest = hash_phone(number)
    other = session.scalar(select(User.id).where(User.phone_hash == digest, User.id != user.id))
    if other is not None:
        msg = f"手机号 {mask_phone(number)} 已用于用户 {other}"
        raise ValueError(msg)
    user.phone_hash, user.phone_masked = digest, mask_phone(number)


def create_user(
    session: Session, *, role: str, name: str, team_id: str | None = None,
    phone: str | None = None, site_id: str | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its token (shown once, never stored).

    Parameters
    ----------
    role, name
        The user's role (:class:`~api.domain.Role`) and display name.
    team_id
        The team a ``team`` account answers for (that role only).
    phone
        A mainland mobile number to sign in with by one-time code (kept hashed and masked).
    site_id
        The open 所 or 站 (township or community position) a ``station`` account allocates
        orders for (that role only).

    Raises
    ------
    ValueError
        If the role is unknown, a team id or site id is missing for its role or given for
        another, the phone number is invalid or taken, or the site is no open 所 or 站.
    NotFoundError
        If the team or the site does not exist.
    """
    if role not in tuple(Role) or role == Role.SYSTEM:  # system: the server's own, no sign-in
        msg = f"unknown role {role!r}; roles: {', '.join(r for r in Role if r != Role.SYSTEM)}"
        raise ValueError(msg)
    if not name.strip():
        msg = "a user needs a name"
        raise ValueError(msg)
    if (role == Role.TEAM) != (team_id is not None):
        msg = "--team is required for role team and only for it"
        raise ValueError(msg)
    if (role == Role.STATION) != (site_id is not None):
        msg = "--site is required for role station and only for it"
        raise ValueError(msg)
    if team_id is not None and session.get(Team, team_id) is None:
        msg = f"没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    if site_id is not None:
        site = session.get(Position, site_id)
        if site is None:
            msg = f"没有编号为 {site_id} 的阵地"
            raise NotFoundError(msg, site_id=site_id)
        if site.level not in STATION_LEVELS or not site.active:
            msg = (f"{site_id} ({site.name}) is a {site.level} position"
                   f"{'' if site.active else ', closed'}: a station account needs an open "
                   f"township (所) or community (站) position")
            raise ValueError(msg)
    number = None
    if phone is not None:
        from api.services.volunteers import InvalidVolunteerError

        try:
            number = normalise_phone(phone)
        except InvalidVolunteerError as e:
            raise ValueError(str(e)) from None
    token = new_token()
    user = User(name=name.strip(), role=Role(role), team_id=team_id, site_id=site_id,
                token_hash=hash_token(token), active=True)
    if number is not None:
        set_phone(session, user, number)
    session.add(user)
    session.flush()
    return user, token


class TokenRejectedError(UnauthorizedError):
    """A token that was valid once but is expired or revoked (``extra["reason"]`` says which)."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.extra["reason"] = reason
        # RFC 6750 §3: tell the client that this token, not the request, is the problem.
        self.headers["WWW-Authenticate"] = (
            f'Bearer realm="practice-circle", error="invalid_token", '
            f'error_description="{reason.replace("_", " ")}"'
        )


def token_ttl() -> timedelta:
    """How long a token works after it was issued (``PRACTICE_CIRCLE_TOKEN_TTL_DAYS``)."""
    return timedelta(days=get_settings().token_ttl_days)


def authenticate(session: Session, token: str | None, *, ttl: timedelta | None = None) -> User:
    """Return the active user a bearer token belongs to.

    ``ttl`` is how long a token works after it was issued (default: the setting).

    Raises
    ------
    UnauthorizedError
        If there is no token or it matches no active user; :class:`TokenRejectedError` if the
        token expired or was revoked.
    """
    if not token:
        msg = "需要登录：请在 Authorization 头中提供 Bearer 令牌"
        raise UnauthorizedError(msg)
    user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
    if user is None or not user.active:
        msg = "令牌无效或已停用"
        raise UnauthorizedError(msg)
    if user.token_revoked_at is not None:
        msg = "令牌已被吊销：请联系管理员换发新令牌"
        raise TokenRejectedError(msg, reason="token_revoked")
    if as_utc(user.token_issued_at) + (ttl if ttl is not None else token_ttl()) <= utcnow():
        msg = "令牌已过期：请联系管理员换发新令牌"
        raise TokenRejectedError(msg, reason="token_expired")
    return user


def find_user(session: Session, *, user_id: int | None = None, name: str | None = None) -> User:
    """Find one user by id or by name (exactly one of them).

    Raises
    ------
    ValueError
        If neither or both are given, or several users have the name.
    NotFoundError
        If no user matches.
    """
    if (user_id is None) == (name is None):
        msg = "give exactly one of --id and --name"
        raise ValueError(msg)
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None:
            msg = f"没有编号为 {user_id} 的用户"
            raise NotFoundError(msg, user_id=user_id)
        return user
    assert name is not None
    users = session.scalars(select(User).where(User.name == name.strip()).order_by(User.id)).all()
    if not users:
        msg = f"没有名为 {name} 的用户"
        raise NotFoundError(msg, name=name)
    if len(users) > 1:
        ids = ", ".join(str(u.id) for u in users)
        msg = f"{len(users)} users are named {name!r} (ids {ids}): use --id"
        raise ValueError(msg)
    return users[0]


def revoke_token(user: User) -> bool:
    """Revoke a user's token at once; return False if it was revoked already."""
    if user.token_revoked_at is not None:
        return False
    user.token_revoked_at = utcnow()
    return True


def rotate_token(user: User) -> str:
    """Give a user a new token (returned, never stored) that replaces the old one at once.

    The new token is valid for the full ``token_ttl_days``, also for a user whose token was
    revoked (that is how a revoked user gets access back).
    """
    token = new_token()
    user.token_hash = hash_token(token)
    user.token_issued_at = utcnow()
    user.token_revoked_at = None
    return token


def end_session(user: User) -> None:
    """Sign a user out: the token is replaced by one nobody holds, so it stops working at once.

    Unlike :func:`revoke_token` this is no lock-out: the user may sign in again by code.
    """
    user.token_hash = hash_token(new_token())


def user_info(user: User) -> dict[str, Any]:
    """Describe a user for the command line (never the token or its hash)."""
    issued = as_utc(user.token_issued_at)
    return {"id": user.id, "name": user.name, "role": user.role, "team_id": user.team_id,
            "site_id": user.site_id, "phone_masked": user.phone_masked,
            "token_issued_at": issued.isoformat(timespec="seconds"),
            "token_expires_at": (issued + token_ttl()).isoformat(timespec="seconds"),
            "token_revoked_at": (None if user.token_revoked_at is None
                                 else as_utc(user.token_revoked_at).isoformat(timespec="seconds"))}


def create_account(
    database_url: str, district: District, *, role: str, name: str, team_id: str | None = None,
    phone: str | None = None, site_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a user in a database (migrated and seeded first); return it and its token.

    Raises
    ------
    ValueError
        As :func:`create_user`, and for role ``volunteer``: volunteers register with their
        phone number (``POST /volunteers``), which makes their profile with the account.
    """
    if role == Role.VOLUNTEER:
        msg = "volunteers register themselves (POST /volunteers, with a phone number)"
        raise ValueError(msg)
    prepare_database(database_url, district)
    with session_maker(database_url)() as session:
        user, token = create_user(session, role=role, name=name, team_id=team_id,
                                  phone=phone, site_id=site_id)
        session.commit()
        info = {"id": user.id, "name": user.name, "role": user.role, "team_id": user.team_id,
                "site_id": user.site_id, "phone_masked": user.phone_masked}
    return info, token


def revoke_account(
    database_url: str, district: District, *, user_id: int | None = None,
    name: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Revoke a user's token in a database; return the user and whether it was still valid."""
    prepare_database(database_url, district)
    with session_maker(database_url)() as session:
        user = find_user(session, user_id=user_id, name=name)
        changed = revoke_token(user)
        session.commit()
        return user_info(user), changed


def rotate_account(
    database_url: str, district: District, *, user_id: int | None = None,
    name: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Give a user in a database a new token; return the user and the token (shown once)."""
    prepare_database(database_url, district)
    with session_maker(database_url)() as session:
        user = find_user(session, user_id=user_id, name=name)
        token = rotate_token(user)
        session.commit()
        return user_info(user), token
