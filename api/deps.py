"""Request dependencies: the loaded district, database sessions, the caller, Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.services.accounts import authenticate
from api.settings import Settings, get_settings
from api.storage.models import User
from api.storage.seed import is_prepared, prepare_database
from api.storage.session import session_maker
from geo import District, get_district


# Dependencies are async where they do no blocking work: FastAPI runs a sync dependency in a
# worker thread, and that hop costs more than the lookups on the hot routes.
async def settings_dep() -> Settings:
    """Return the process-wide settings."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]
_loaded: dict[tuple[str, str], District] = {}


def load_district(name: str, cache: str) -> District:
    """Load (or build once) a district; kept in memory for the life of the process."""
    key = (name, cache)
    if key not in _loaded:
        _loaded[key] = get_district(name, cache_dir=Path(cache))
    return _loaded[key]


async def current_district(
    settings: SettingsDep,
    district: Annotated[
        str | None, Query(description="District name (default: the served district)")
    ] = None,
) -> District:
    """Resolve the ``district`` query parameter to a loaded district."""
    key = (district or settings.district, str(settings.cache))
    if key in _loaded:
        return _loaded[key]
    # Loading (or building) reads files: keep it off the event loop.
    return await run_in_threadpool(load_district, *key)


DistrictDep = Annotated[District, Depends(current_district)]


# Dispatch: database sessions, the calling user, Idempotency-Key.

_bearer = HTTPBearer(auto_error=False, description="API token from `practice-circle users create`")


async def _open(
    settings: Settings, district: District, *, readonly: bool, single_statement: bool = False
) -> Session:
    # Making a session does no I/O (it connects on first use, in the route's worker thread), so
    # it is made on the event loop; closing it (below) returns the connection in a worker thread.
    url = settings.resolved_database_url
    if not is_prepared(url, district.name):
        await run_in_threadpool(prepare_database, url, district)
    return session_maker(url, readonly=readonly, single_statement=single_statement)()


async def write_session(settings: SettingsDep, district: DistrictDep) -> AsyncIterator[Session]:
    """Yield a session whose transaction may write (SQLite: takes the write lock at once)."""
    session = await _open(settings, district, readonly=False)
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def read_session(settings: SettingsDep, district: DistrictDep) -> AsyncIterator[Session]:
    """Yield a read-only session (SQLite: a deferred transaction beside the writer)."""
    session = await _open(settings, district, readonly=True)
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def lookup_session(settings: SettingsDep, district: DistrictDep) -> AsyncIterator[Session]:
    """Yield a read-only session for a route that runs a single query (autocommit on PostGIS).

    Closing it does no network I/O (PostgreSQL: nothing to roll back; SQLite: ending a read
    transaction in-process), so it is closed on the event loop.
    """
    session = await _open(settings, district, readonly=True, single_statement=True)
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(write_session)]
ReadSessionDep = Annotated[Session, Depends(read_session)]
LookupSessionDep = Annotated[Session, Depends(lookup_session)]


def _user(session: Session, creds: HTTPAuthorizationCredentials | None) -> User:
    return authenticate(session, creds.credentials if creds else None)


def writer(
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """Return the calling user, read in the writing session."""
    return _user(session, creds)


def reader(
    session: ReadSessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """Return the calling user, read in the read-only session."""
    return _user(session, creds)


WriterDep = Annotated[User, Depends(writer)]
ReaderDep = Annotated[User, Depends(reader)]
IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe POST: the first answer to this key is replayed on retries",
    ),
]
