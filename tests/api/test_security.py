"""Running in public: rate limits, the body cap, security headers, token expiry and revocation,
owner-only files, and the API docs offline.

The app runs whole (lifespan, middleware, real SQLite + SpatiaLite database); where the network
matters (bodies that never arrive, a burst of concurrent writes, a browser) it runs under a real
uvicorn. Migration 0002 runs on SQLite and on PostgreSQL + PostGIS (``scripts/postgres.sh``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from select import select as readable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, update

import geo
from api.services.accounts import (
    authenticate,
    create_user,
    hash_token,
    revoke_token,
    rotate_token,
)
from api.services.dispatch_errors import UnauthorizedError
from api.settings import Settings, get_settings
from api.storage.models import ServiceRequest, User, as_utc, utcnow
from api.storage.seed import prepare_database
from api.storage.session import alembic_config, get_engine, lock_for_migration, session_maker
from geo.district import save_district
from maps.page import ONLINE_TILES
from tests.api.dispatch.helpers import (
    Server,
    drop_postgres_database,
    new_request,
    postgres_script,
)

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}
LIMIT_ENV = ("RATE_LIMIT_ENABLED", "RATE_LIMIT_READS", "RATE_LIMIT_WRITES",
             "RATE_LIMIT_WRITES_PER_ADDRESS", "MAX_BODY_BYTES", "TOKEN_TTL_DAYS")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, district: geo.District) -> str:
    """A migrated and seeded SQLite database for this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('security') / 'practice.db'}"
    prepare_database(url, district)
    return url


@contextmanager
def app_client(db_url: str, client: tuple[str, int] = ("203.0.113.1", 40000),
               **env: Any) -> Iterator[TestClient]:
    """The whole app on ``db_url`` with ``PRACTICE_CIRCLE_<KEY>`` settings, as one address."""
    from api.main import create_app

    with pytest.MonkeyPatch.context() as mp:
        for key in LIMIT_ENV:
            mp.delenv(f"PRACTICE_CIRCLE_{key}", raising=False)
        mp.setenv("PRACTICE_CIRCLE_DATABASE_URL", db_url)
        for key, value in env.items():
            mp.setenv(f"PRACTICE_CIRCLE_{key.upper()}", str(value))
        get_settings.cache_clear()
        try:
            with TestClient(create_app(), client=client) as c:
                yield c
        finally:
            get_settings.cache_clear()


def bearer(db_url: str, role: str = "resident", name: str = "居民") -> dict[str, str]:
    with session_maker(db_url)() as s:
        _, token = create_user(s, role=role, name=name)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def assert_rate_limited(r: httpx.Response, per: str) -> int:
    body = assert_problem(r, 429, "rate_limited")
    assert body["title"] == "请求过于频繁" and body["per"] == per
    retry = int(r.headers["retry-after"])
    assert retry == body["retry_after"] and 1 <= retry <= 86_400
    return retry


def csp(r: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as directive → sources."""
    out = {}
    for part in r.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


@pytest.fixture(scope="module")
def server(db_url: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """``uvicorn api.main:app`` with the default limits and a 64 KiB body cap."""
    log = tmp_path_factory.mktemp("security-server") / "uvicorn.log"
    srv = Server(url=db_url, cache=cache_dir, log=log)
    with pytest.MonkeyPatch.context() as mp:
        for key in LIMIT_ENV:
            mp.delenv(f"PRACTICE_CIRCLE_{key}", raising=False)
        mp.setenv("PRACTICE_CIRCLE_MAX_BODY_BYTES", "65536")
        srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- rate limits


def test_writes_per_token_get_429_with_retry_after_and_do_nothing(db_url: str) -> None:
    with app_client(db_url, rate_limit_writes="5/day",
                    rate_limit_writes_per_address="100/day") as c:
        alice, bob = bearer(db_url, name="alice"), bearer(db_url, name="bob")
        codes = [c.post("/requests", headers=alice, json=new_request()).status_code
                 for _ in range(8)]
        assert codes[:5] == [201] * 5, codes
        refused = c.post("/requests", headers=alice, json=new_request())
        assert_rate_limited(refused, "token")
        assert "同一令牌" in refused.json()["detail"] and "5 次写请求" in refused.json()["detail"]
        assert refused.headers["x-content-type-options"] == "nosniff"
        # Per token: another resident at the same address still gets through.
        assert c.post("/requests", headers=bob, json=new_request()).status_code == 201
        # Reads are not writes.
        me = c.get("/users/me", headers=alice)
        assert me.status_code == 200
        alice_id = me.json()["id"]
    with session_maker(db_url)() as s:
        stored = s.scalar(select(func.count()).select_from(ServiceRequest)
                          .where(ServiceRequest.resident_id == alice_id))
    assert stored == codes.count(201) < 8  # a refused write created nothing


def test_writes_per_address_whatever_the_token(db_url: str) -> None:
    with app_client(db_url, rate_limit_writes="100/day",
                    rate_limit_writes_per_address="4/day") as c:
        tokens = [bearer(db_url, name=f"r{i}") for i in range(6)]
        codes = [c.post("/requests", headers=t, json=new_request()).status_code for t in tokens]
        assert codes[:4] == [201] * 4 and 429 in codes[4:], codes
        assert_rate_limited(c.post("/requests", json=new_request()), "address")  # no token
        # Another address is counted apart.
        other = TestClient(c.app, client=("198.51.100.7", 40000))
        assert other.post("/requests", headers=tokens[5], json=new_request()).status_code == 201


def test_reads_per_address_count_an_ipv6_client_by_its_64(db_url: str) -> None:
    with app_client(db_url, client=("2001:db8:1:2::10", 1), rate_limit_reads="3/day") as c:
        assert [c.get("/categories").status_code for _ in range(3)] == [200] * 3
        r = c.get("/categories")
        assert_rate_limited(r, "address")
        assert "同一地址" in r.json()["detail"] and "3 次读请求" in r.json()["detail"]
        assert c.get("/health").status_code == 200  # probes are never counted

        def get(host: str) -> int:
            return TestClient(c.app, client=(host, 2)).get("/categories").status_code

        assert get("2001:db8:1:2::99") == 429  # same /64: same subscriber
        assert get("2001:db8:1:3::10") == 200  # next /64
        assert get("192.0.2.10") == 200


def test_rate_limits_can_be_turned_off(db_url: str) -> None:
    token = bearer(db_url)
    with app_client(db_url, rate_limit_enabled="false", rate_limit_reads="1/day",
                    rate_limit_writes="1/day", rate_limit_writes_per_address="1/day") as c:
        assert {c.get("/categories").status_code for _ in range(5)} == {200}
        assert {c.post("/requests", headers=token, json=new_request()).status_code
                for _ in range(3)} == {201}


def test_bad_limit_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_limit_writes"):
        Settings(rate_limit_writes="often")


def test_default_limits_stop_a_burst_from_one_token(server: Server, db_url: str) -> None:
    """Before: 300 POST /requests from one token in 2.4 s were all 201."""
    token = bearer(db_url, name="burst")
    with session_maker(db_url)() as s:
        before = s.scalar(select(func.count()).select_from(ServiceRequest))

    def post(_: int) -> httpx.Response:
        return httpx.post(server.base + "/requests", headers=token, json=new_request(),
                          timeout=60)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(100)))
    created = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 429]
    assert len(created) + len(refused) == 100, {r.status_code for r in answers}
    # 60 a minute; a sliding window that crosses a minute boundary mid-burst lets a few more by.
    assert 60 <= len(created) <= 64, len(created)
    for r in refused:
        assert_rate_limited(r, "token")
    with session_maker(db_url)() as s:
        after = s.scalar(select(func.count()).select_from(ServiceRequest))
    assert after - before == len(created)


# ------------------------------------------------------------------------------- body cap


def test_body_over_the_cap_gets_413_problem(db_url: str) -> None:
    token = bearer(db_url)
    with app_client(db_url) as c:
        big = json.dumps(new_request(description="长" * 2_000)).encode() + b" " * 1_048_576
        r = c.post("/requests", headers={**token, "content-type": "application/json"},
                   content=big)
        body = assert_problem(r, 413, "payload_too_large")
        assert body["title"] == "请求体过大" and body["max_bytes"] == 1_048_576
        assert r.headers["x-frame-options"] == "DENY"
        # A route that never reads a body refuses it as well (by its Content-Length).
        assert_problem(c.request("GET", "/categories", content=b"x" * 1_048_577), 413,
                       "payload_too_large")
        # Just under the cap it is read, and judged on its content.
        under = json.dumps(new_request()).encode()
        under += b" " * (1_048_576 - len(under))
        r = c.post("/requests", headers={**token, "content-type": "application/json"},
                   content=under)
        assert r.status_code == 201, r.text


def _raw_request(base: str, head: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head.encode("latin-1"))
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(rest) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest


def test_real_server_refuses_a_declared_huge_body_without_waiting_for_it(
    server: Server, db_url: str
) -> None:
    token = bearer(db_url)["Authorization"]
    t0 = time.monotonic()
    with _raw_request(server.base, (
        f"POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    )) as sock:  # 100 MB announced, not one byte sent
        status, headers, body = _read_response(sock)
    assert time.monotonic() - t0 < 10
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "payload_too_large"
    assert json.loads(body)["max_bytes"] == 65536


def test_real_server_counts_a_streamed_body_and_stops_it(server: Server, db_url: str) -> None:
    token = bearer(db_url)["Authorization"]
    sock = _raw_request(server.base, (
        f"POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ))
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB, no Content-Length anywhere
    sent = 0
    with sock:
        try:
            while sent < 4 * 1_048_576:
                if readable([sock], [], [], 0.05)[0]:
                    break  # the server has answered
                sock.sendall(chunk)
                sent += 0x4000
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = _read_response(sock)
    assert status == 413 and json.loads(body)["code"] == "payload_too_large", body
    assert headers["x-content-type-options"] == "nosniff"
    assert 65536 < sent < 1_048_576  # answered soon after the cap, not after the whole stream


# -------------------------------------------------------------------------------- headers


def test_security_headers_on_every_kind_of_answer(db_url: str) -> None:
    with app_client(db_url, rate_limit_reads="40/day") as c:
        answers = {
            "json": c.get("/categories"),
            "not found": c.get("/no-such-page"),
            "unauthorized": c.post("/requests", json=new_request()),
            "invalid": c.get("/nearest", params={"lon": "east"}),
            "static": c.get("/assets/leaflet/leaflet.js"),
            "page": c.get("/"),
            "docs": c.get("/docs"),
            "method": c.delete("/categories"),
            "too large": c.post("/requests", content=b"x" * 2_000_000),
        }
        while (r := c.get("/categories")).status_code != 429:
            pass
        answers["rate limited"] = r
    assert answers["unauthorized"].status_code == 401
    assert answers["static"].status_code == 200
    for what, r in answers.items():
        for name, value in SECURITY.items():
            assert r.headers.get(name) == value, (what, name, r.headers)
        policy = csp(r)
        assert policy["default-src"] == ["'self'"], what
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in str(policy)


def test_405_answers_say_which_methods_are_allowed(db_url: str) -> None:
    with app_client(db_url) as c:
        r = c.delete("/categories")
        assert_problem(r, 405, "method_not_allowed")
        assert "GET" in [m.strip() for m in r.headers["allow"].split(",")]
        r = c.get("/requests/1/accept")
        assert r.status_code == 405 and "POST" in r.headers["allow"]


def _expected_hashes(html: str) -> set[str]:
    """Inline scripts of a page, found with a regex (independent of the middleware's parser)."""
    scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S | re.I)
    return {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in scripts}


def test_pages_may_run_exactly_their_own_inline_scripts(db_url: str) -> None:
    tiles = re.match(r"https://[^/]+", ONLINE_TILES)
    assert tiles is not None
    with app_client(db_url) as c:
        for path in ("/", "/map", "/docs"):
            plain = c.get(path, headers={"accept-encoding": "identity"})
            zipped = c.get(path, headers={"accept-encoding": "gzip"})
            assert plain.status_code == zipped.status_code == 200
            expected = _expected_hashes(plain.text)
            assert expected, f"{path} has inline scripts to allow"
            for r in (plain, zipped):
                policy = csp(r)
                assert set(policy["script-src"]) == {"'self'", *expected}, path
                assert tiles.group() in policy["img-src"]  # the optional online tile layer
        # Revalidating the page keeps the policy the browser already has.
        etag = c.get("/").headers["etag"]
        r = c.get("/", headers={"if-none-match": etag})
        assert r.status_code == 304
        assert "content-security-policy" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"
        # Data never runs as a page.
        assert "'sha256-" not in c.get("/categories").headers["content-security-policy"]


# ------------------------------------------------------------------------------- tokens


def test_tokens_expire_after_the_setting(db_url: str) -> None:
    token = bearer(db_url, name="老用户")

    def age(days: float) -> None:
        with session_maker(db_url)() as s:
            s.execute(update(User).where(User.token_hash == hash_token(
                token["Authorization"].split()[1])).values(
                token_issued_at=utcnow() - timedelta(days=days)))
            s.commit()

    with app_client(db_url) as c:
        age(89)
        assert c.get("/users/me", headers=token).status_code == 200
        age(91)  # the default is 90 days
        r = c.get("/users/me", headers=token)
        body = assert_problem(r, 401, "unauthorized")
        assert body["reason"] == "token_expired" and "过期" in body["detail"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    with app_client(db_url, token_ttl_days=120) as c:
        assert c.get("/users/me", headers=token).status_code == 200
    with app_client(db_url, token_ttl_days=0.5) as c:
        age(0.6)
        assert c.get("/users/me", headers=token).status_code == 401
        age(0.4)
        assert c.get("/users/me", headers=token).status_code == 200


def test_revoked_token_stops_and_rotation_replaces_it(db_url: str) -> None:
    with session_maker(db_url)() as s:
        user, old = create_user(s, role="dispatcher", name="调度员")
        s.commit()
        uid = user.id
    with app_client(db_url) as c:
        assert c.get("/users/me", headers={"Authorization": f"Bearer {old}"}).json()["id"] == uid
        with session_maker(db_url)() as s:
            u = s.get(User, uid)
            assert u is not None and revoke_token(u) and not revoke_token(u)
            s.commit()
        body = assert_problem(c.get("/users/me", headers={"Authorization": f"Bearer {old}"}),
                              401, "unauthorized")
        assert body["reason"] == "token_revoked"
        with session_maker(db_url)() as s:
            u = s.get(User, uid)
            assert u is not None
            new = rotate_token(u)
            s.commit()
            assert u.token_hash == hash_token(new) and new not in u.token_hash
        assert c.get("/users/me", headers={"Authorization": f"Bearer {new}"}).json()["id"] == uid
        body = assert_problem(c.get("/users/me", headers={"Authorization": f"Bearer {old}"}),
                              401, "unauthorized")
        assert "reason" not in body  # the old token is simply unknown now


# ------------------------------------------------------------------------- migration 0002


@pytest.fixture(scope="module")
def postgis_database() -> Iterator[Callable[[], str]]:
    """Make fresh databases on the throwaway PostGIS cluster; drop them afterwards."""
    if os.environ.get("PRACTICE_CIRCLE_SKIP_POSTGIS") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_POSTGIS=1")
    was_running = postgres_script("status").returncode == 0
    made: list[str] = []

    def new() -> str:
        res = postgres_script("start", f"pc_security_{os.getpid()}_{len(made)}")
        if res.returncode != 0:
            pytest.fail(f"scripts/postgres.sh start failed ({res.returncode}):\n{res.stderr}")
        made.append(res.stdout.strip().splitlines()[-1])
        return made[-1]

    yield new
    for url in made:
        get_engine(url).dispose()
        drop_postgres_database(url)
    if not was_running:
        postgres_script("stop")


def _migrate(url: str, direction: str, target: str) -> None:
    with get_engine(url).begin() as conn:
        lock_for_migration(conn)
        getattr(command, direction)(alembic_config(conn), target)


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_migration_0002_keeps_existing_tokens_and_downgrades(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgis_database")())
    _migrate(url, "upgrade", "0001")
    users_0001 = sa.table("users", sa.column("name"), sa.column("role"),
                          sa.column("token_hash"), sa.column("active"),
                          sa.column("created_at", sa.DateTime(timezone=True)))
    now = utcnow()
    with get_engine(url).begin() as conn:  # users made before tokens expired
        conn.execute(sa.insert(users_0001), [
            {"name": "新", "role": "resident", "token_hash": hash_token("pc_recent"),
             "active": True, "created_at": now - timedelta(days=10)},
            {"name": "旧", "role": "resident", "token_hash": hash_token("pc_ancient"),
             "active": True, "created_at": now - timedelta(days=400)},
        ])

    _migrate(url, "upgrade", "head")
    with session_maker(url)() as s:
        users = {u.name: u for u in s.scalars(select(User))}
        for u in users.values():
            assert as_utc(u.token_issued_at) == as_utc(u.created_at)
            assert u.token_revoked_at is None
        assert authenticate(s, "pc_recent").name == "新"
        with pytest.raises(UnauthorizedError, match="过期"):
            authenticate(s, "pc_ancient")
        # A row written without an issue time holds an expired token (the server default).
        s.execute(sa.insert(users_0001).values(
            name="无", role="resident", token_hash=hash_token("pc_unknown"), active=True,
            created_at=now))
        s.commit()
        with pytest.raises(UnauthorizedError, match="过期"):
            authenticate(s, "pc_unknown")
        assert authenticate(s, "pc_ancient", ttl=timedelta(days=500)).name == "旧"

    _migrate(url, "downgrade", "0001")
    with get_engine(url).connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("users")}
        assert not columns & {"token_issued_at", "token_revoked_at"}
        assert conn.scalar(select(func.count()).select_from(users_0001)) == 3
    _migrate(url, "upgrade", "head")
    with session_maker(url)() as s:
        assert authenticate(s, "pc_recent").name == "新"
    get_engine(url).dispose()


# --------------------------------------------------------------------- owner-only files


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_folder_are_owner_only(tmp_path: Path,
                                                       district: geo.District) -> None:
    folder = tmp_path / "var" / "cache"
    with umask(0o022):  # the usual umask, which left the database world-readable
        url = f"sqlite:///{folder / 'practice.db'}"
        prepare_database(url, district)
        with session_maker(url)() as s:
            create_user(s, role="resident", name="隐私")
            s.commit()
        with get_engine(url).connect() as conn:  # the -wal and -shm files exist while open
            conn.exec_driver_sql("SELECT 1")
            assert mode(folder) == 0o700
            for name in ("practice.db", "practice.db-wal", "practice.db-shm"):
                assert mode(folder / name) == 0o600, name
        get_engine(url).dispose()

        old = tmp_path / "old.db"  # a database an older version left world-readable
        old.touch()
        old.chmod(0o644)
        get_engine(f"sqlite:///{old}").dispose()
        assert mode(old) == 0o600


def test_district_cache_folders_are_owner_only(tmp_path: Path, district: geo.District) -> None:
    cache = tmp_path / "fresh" / "practice-circle"
    with umask(0o022):
        folder = save_district(district, cache)
    assert mode(cache) == 0o700
    assert mode(cache / "districts") == 0o700
    assert mode(folder) == 0o700


# ---------------------------------------------------------------------- docs in a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


@contextmanager
def visit(browser: Any, url: str) -> Iterator[tuple[Any, dict[str, list[Any]]]]:
    ctx = browser.new_context(locale="zh-CN")
    page = ctx.new_page()
    seen: dict[str, list[Any]] = {"errors": [], "requests": [], "failed": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(f"pageerror: {e}"))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append((r.url, r.failure)))
    try:
        page.goto(url)
        yield page, seen
    finally:
        ctx.close()


def _outside(seen: dict[str, list[Any]], base: str) -> list[str]:
    return [u for u in seen["requests"] if not u.startswith((base + "/", "data:", "blob:"))]


@pytest.mark.browser
def test_swagger_ui_renders_offline(browser: Any, server: Server) -> None:
    with visit(browser, server.base + "/docs") as (page, seen):
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "practice-circle" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-summary-path[data-path='/requests']", timeout=30_000)
        page.wait_for_timeout(500)
        assert _outside(seen, server.base) == []
        assert seen["errors"] == []
        assert any(u.endswith("/assets/swagger-ui-dist/swagger-ui-bundle.js")
                   for u in seen["requests"])


@pytest.mark.browser
def test_redoc_renders_and_nothing_leaves(browser: Any, server: Server) -> None:
    with visit(browser, server.base + "/redoc") as (page, seen):
        page.wait_for_selector("h1", timeout=30_000)
        assert "practice-circle" in page.inner_text("h1")
        page.wait_for_timeout(1000)
        # ReDoc 2 asks for its vendor logo on a CDN: the policy stops it before it is sent.
        for url in _outside(seen, server.base):
            assert (url, "csp") in seen["failed"], (url, seen["failed"])
        assert all("Content Security Policy" in e for e in seen["errors"]), seen["errors"]


@pytest.mark.browser
def test_map_runs_but_an_injected_handler_does_not(browser: Any, server: Server) -> None:
    with visit(browser, server.base + "/map") as (page, seen):
        # Not wait_for_function: Playwright polls that with eval, which the policy forbids.
        deadline = time.monotonic() + 30
        while not page.evaluate("() => window.practiceMap && window.practiceMap.ready === true"):
            assert time.monotonic() < deadline, "the map did not get ready"
            page.wait_for_timeout(100)
        assert seen["errors"] == [] and _outside(seen, server.base) == []
        page.evaluate("""() => {
            window.pcViolations = [];
            document.addEventListener('securitypolicyviolation',
                e => window.pcViolations.push(e.violatedDirective));
            const d = document.createElement('div');
            d.innerHTML = '<img src="data:," onerror="window.pcInjected = 1">';
            document.body.appendChild(d);
        }""")
        page.wait_for_timeout(500)
        assert page.evaluate("window.pcInjected") is None
        assert any(v.startswith("script-src") for v in page.evaluate("window.pcViolations"))
