"""Request dependencies: the loaded district, database sessions, the caller, Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, NamedTuple

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.errors import PreconditionRequiredError
from api.served import ServedDistricts
from api.services.accounts import authenticate
from api.services.analysis import VersionAnalysis, analysis_of
from api.services.dispatch_errors import ForbiddenError
from api.settings import Settings, get_settings
from api.storage.models import User
from api.storage.seed import is_prepared, prepare_database
from api.storage.session import session_maker
from api.workload import WorkLimiter
from geo import District, get_district
from geo.datum import Crs, to_wgs84


# Dependencies are async where they do no blocking work: FastAPI runs a sync dependency in a
# worker thread, and that hop costs more than the lookups on the hot routes.
async def settings_dep() -> Settings:
    """Return the process-wide settings."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]
_loaded: dict[tuple[str, str], District] = {}


def load_district(name: str, cache: str) -> District:
    """Load (or build once) a district at start-up; kept in memory for the life of the process."""
    key = (name, cache)
    if key not in _loaded:
        _loaded[key] = get_district(name, cache_dir=Path(cache))
    return _loaded[key]


def serve_districts(app: FastAPI, settings: Settings) -> ServedDistricts:
    """Load every served district, get its database ready, and pin them on the app.

    Loading may build a bundled district into the cache, and preparing migrates the database
    and seeds a new district's demo registry: both happen here, at start, never for a request.
    Requests choose among these by exact name.
    """
    url = settings.resolved_database_url
    loaded = {name: load_district(name, str(settings.cache)) for name in settings.served_districts}
    for district in loaded.values():
        prepare_database(url, district)
    served = ServedDistricts(loaded, url)
    app.state.served = served
    return served


async def current_district(
    request: Request,
    district: Annotated[
        str | None,
        Query(max_length=64, description="District name, exactly as served (default: the first)"),
    ] = None,
) -> District:
    """Resolve the ``district`` query parameter to a served district at its registry's version.

    Raises
    ------
    UnknownDistrictError
        If no served district has exactly this name (404).
    """
    served: ServedDistricts = request.app.state.served
    return served.current(district)


DistrictDep = Annotated[District, Depends(current_district)]


async def current_analysis(district: DistrictDep) -> VersionAnalysis:
    """Return the analysis of the requested district at its registry's current version."""
    return analysis_of(district)


AnalysisDep = Annotated[VersionAnalysis, Depends(current_analysis)]


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


def maybe_reader(
    session: ReadSessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """Return the calling user, or ``None`` without a token (a bad token is still 401)."""
    return None if creds is None else _user(session, creds)


async def admin_writer(user: WriterDep) -> User:
    """Return the calling user if an admin (writing session).

    Raises
    ------
    ForbiddenError
        If the user is not an admin (403); no or a bad token is 401.
    """
    return _admin(user)


async def admin_reader(user: ReaderDep) -> User:
    """Return the calling user if an admin (read-only session); 403 otherwise."""
    return _admin(user)


def _admin(user: User) -> User:
    if user.role != "admin":
        msg = "只有管理员可以查看或修改阵地与队伍名录"
        raise ForbiddenError(msg, role=user.role)
    return user


MaybeReaderDep = Annotated[User | None, Depends(maybe_reader)]
AdminDep = Annotated[User, Depends(admin_writer)]
AdminReaderDep = Annotated[User, Depends(admin_reader)]
IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe POST: the first answer to this key is replayed on retries",
    ),
]


_IF_MATCH = "The `ETag` of the version edited (from a GET); 412 if it changed meanwhile"


async def require_if_match(
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=1000,
                                           description=_IF_MATCH)] = None,
) -> str:
    """Return the ``If-Match`` header of a change.

    Raises
    ------
    PreconditionRequiredError
        If it is missing (428): an edit must say which version it starts from.
    """
    if if_match is None or not if_match.strip():
        msg = "修改须带 If-Match 头：先 GET 该记录取得 ETag，再以 If-Match: <ETag> 提交"
        raise PreconditionRequiredError(msg)
    return if_match


IfMatchDep = Annotated[str, Depends(require_if_match)]
IfMatchOptionalDep = Annotated[
    str | None,
    Header(alias="If-Match", max_length=1000, description=_IF_MATCH + " (optional here)"),
]


async def work_limiter(request: Request) -> WorkLimiter:
    """Return the app's limiter of expensive computations."""
    limiter: WorkLimiter = request.app.state.work
    return limiter


WorkDep = Annotated[WorkLimiter, Depends(work_limiter)]


# Datums at the edge (geo/datum.py): coordinates may come and go in GCJ-02 or BD-09; services
# see WGS84 only.

CrsDep = Annotated[Crs, Query(
    description="Datum of the coordinates given: `wgs84` (GPS, OSM; the default), `gcj02` "
                "(Amap 高德, Tencent 腾讯, WeChat 微信) or `bd09` (Baidu 百度); converted to "
                "WGS84 on arrival",
)]
OutCrsDep = Annotated[Crs, Query(
    description="Datum of the coordinates in the answer: `wgs84` (the default), `gcj02` or "
                "`bd09`",
)]


class LonLat(NamedTuple):
    """A position in WGS84."""

    lon: float
    lat: float


async def wgs84_point(
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, in `crs`")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, in `crs`")],
    crs: CrsDep = Crs.WGS84,
) -> LonLat:
    """Read the ``lon``, ``lat`` and ``crs`` query parameters as a WGS84 position."""
    return LonLat(*to_wgs84(lon, lat, crs=crs))


PointDep = Annotated[LonLat, Depends(wgs84_point)]
