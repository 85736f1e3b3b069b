"""Create users and check their bearer tokens (kept only as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services.dispatch_errors import NotFoundError, UnauthorizedError
from api.storage.models import ROLES, Team, User
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from geo import District

TOKEN_PREFIX = "pc_"


def new_token() -> str:
    """Make a fresh random API token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session, *, role: str, name: str, team_id: str | None = None
) -> tuple[User, str]:
    """Create a user and return it with its token (shown once, never stored).

    Raises
    ------
    ValueError
        If the role is unknown, or a team id is missing for role ``team`` or given for another.
    NotFoundError
        If the team does not exist.
    """
    if role not in ROLES:
        msg = f"unknown role {role!r}; roles: {', '.join(ROLES)}"
        raise ValueError(msg)
    if not name.strip():
        msg = "a user needs a name"
        raise ValueError(msg)
    if (role == "team") != (team_id is not None):
        msg = "--team is required for role team and only for it"
        raise ValueError(msg)
    if team_id is not None and session.get(Team, team_id) is None:
        msg = f"没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    token = new_token()
    user = User(name=name.strip(), role=role, team_id=team_id, token_hash=hash_token(token),
                active=True)
    session.add(user)
    session.flush()
    return user, token


def authenticate(session: Session, token: str | None) -> User:
    """Return the active user a bearer token belongs to.

    Raises
    ------
    UnauthorizedError
        If there is no token or it matches no active user.
    """
    if not token:
        msg = "需要登录：请在 Authorization 头中提供 Bearer 令牌"
        raise UnauthorizedError(msg)
    user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
    if user is None or not user.active:
        msg = "令牌无效或已停用"
        raise UnauthorizedError(msg)
    return user


def create_account(
    database_url: str, district: District, *, role: str, name: str, team_id: str | None = None
) -> tuple[dict[str, Any], str]:
    """Create a user in a database (migrated and seeded first); return it and its token."""
    prepare_database(database_url, district)
    with session_maker(database_url)() as session:
        user, token = create_user(session, role=role, name=name, team_id=team_id)
        session.commit()
        info = {"id": user.id, "name": user.name, "role": user.role, "team_id": user.team_id}
    return info, token
