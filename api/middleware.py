"""Guard the service on the open internet: rate limits, a request body cap, security headers.

One pure ASGI middleware, :class:`PublicGuard`, outermost of the app's own:

* **Rate limits** (library ``limits``, sliding-window counters in this process's memory): reads
  (GET/HEAD/OPTIONS) per client address, writes (POST/PUT/PATCH/DELETE) per bearer token and
  per client address. An IPv6 client counts by its /64, the block one subscriber gets. Beyond a
  limit: ``429`` problem+json ``rate_limited`` with ``Retry-After``, answered before any route,
  database or body work. ``POST /auth/codes`` (each may send an SMS) also counts against
  ``rate_limit_signin`` per address. ``/health*`` is not counted (load balancers probe it).
  Counters are per process: with ``uvicorn --workers N`` each worker counts on its own (N
  times the limit).
  Behind a reverse proxy the client address is what uvicorn makes of ``X-Forwarded-For``
  (``--forwarded-allow-ips``, by default trusted from 127.0.0.1 only).
* **Body cap**: Starlette's ``RequestBodyLimitMiddleware`` refuses a body over
  ``max_body_bytes`` from its ``Content-Length`` before reading any of it, and counts the bytes
  of a streamed (chunked) body as they arrive. A route may declare a larger
  ``max_body_size`` of its own (FastAPI), which then applies to it. Every 413 is answered as
  problem+json ``payload_too_large``, except a route's own problem+json 413 (such as
  ``photo_too_large``), which passes as it is.
* **Security headers** on every response the app makes: ``Content-Security-Policy``,
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy``. An HTML
  page may run only scripts from this origin and the inline ``<script>`` blocks it was served
  with (their SHA-256 hashes, read from the page), never inline event handlers or injected
  scripts; styles may be inline (Leaflet, Swagger UI and ReDoc set them). Images may also come
  from the map's optional online OSM tile layer. (A 500 made by Starlette's outermost error
  middleware passes outside this one: :data:`SECURITY_HEADERS` is there for its handler.)
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import ipaddress
import json
import math
import time
from collections import OrderedDict
from functools import lru_cache
from html.parser import HTMLParser
from http import HTTPStatus
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, problem
from api.settings import Settings, get_settings
from maps.page import ONLINE_TILES

#: Methods that change state; all others count as reads.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Paths never rate limited (liveness and readiness probes).
UNCOUNTED_PREFIXES = ("/health",)
#: Paths with a tighter per-address limit of their own (each call may send an SMS).
SIGNIN_CODE_PATHS = frozenset({"/auth/codes"})
_TILE_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(ONLINE_TILES))


def content_security_policy(script_hashes: tuple[str, ...] = ()) -> str:
    """Return the policy: this origin only, plus the given inline scripts (base64 SHA-256)."""
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return "; ".join((
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {_TILE_ORIGIN}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


#: Headers on every response. ``strict-origin-when-cross-origin`` sends other sites only our
#: origin (never paths or query strings), which the OSM tile servers ask for.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
_HEADER_ITEMS = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in SECURITY_HEADERS.items()]


class _InlineScripts(HTMLParser):
    """Collect the text of every ``<script>`` without ``src``, exactly as the browser hashes it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._text is not None:
            self.found.append("".join(self._text))
            self._text = None


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """Return the base64 SHA-256 of each inline script of a page, in order, without repeats."""
    parser = _InlineScripts()
    # Browsers hash the script after newline normalization (HTML input preprocessing).
    parser.feed(html.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    digests = (base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii")
               for s in parser.found)
    return tuple(dict.fromkeys(digests))


def client_address(scope: Scope) -> str:
    """Return the address a client is counted by: its IP, or for IPv6 its /64 network."""
    client = scope.get("client")
    return _counted_as(str(client[0]) if client else "")


@lru_cache(maxsize=4096)
def _counted_as(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _bearer_key(headers: Headers) -> str | None:
    """Return a digest of the bearer token (the token itself is never kept), if any."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


_ZH_UNITS = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天", "month": "个月",
             "year": "年"}


def _zh_window(item: RateLimitItem) -> str:
    unit = _ZH_UNITS.get(item.GRANULARITY.name, item.GRANULARITY.name)
    return unit if item.multiples == 1 else f" {item.multiples} {unit}"


class PublicGuard:
    """Rate limits, the body cap and security headers (see the module docstring).

    ``settings`` default to :func:`api.settings.get_settings`, read when the app builds its
    middleware (at start-up), so environment variables set before then apply.
    """

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self.app: ASGIApp = RequestBodyLimitMiddleware(app, max_body_size=settings.max_body_bytes)
        self.max_body_bytes = settings.max_body_bytes
        self.limiter: SlidingWindowCounterRateLimiter | None = None
        if settings.rate_limit_enabled:
            self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.reads = parse_many(settings.rate_limit_reads)
        self.writes = parse_many(settings.rate_limit_writes)
        self.writes_per_address = parse_many(settings.rate_limit_writes_per_address)
        self.signin = parse_many(settings.rate_limit_signin)
        self._policies: OrderedDict[bytes, str] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 429 beyond a rate limit, else pass the request on with ``send`` guarded."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        out = _Outgoing(self, scope, send)
        refused = self._rate_limited(scope) if self.limiter is not None else None
        if refused is not None:
            await refused(scope, receive, out)
            return
        await self.app(scope, receive, out)

    # ------------------------------------------------------------------------- rate limits

    def _rate_limited(self, scope: Scope) -> Response | None:
        path: str = scope.get("path", "")
        if path.startswith(UNCOUNTED_PREFIXES):
            return None
        address = client_address(scope)
        if scope.get("method", "GET") not in WRITE_METHODS:
            checks = [("reads", "address", address, self.reads)]
        else:
            checks = [("writes", "address", address, self.writes_per_address)]
            token = _bearer_key(Headers(scope=scope))
            if token is not None:
                checks.insert(0, ("writes", "token", token, self.writes))
            if path.rstrip("/") in SIGNIN_CODE_PATHS:
                checks.append(("codes", "address", address, self.signin))
        for kind, per, who, items in checks:
            for item in items:
                if not self._hit(item, kind, per, who):
                    return self._too_many(scope, item, kind, per, who)
        return None

    def _hit(self, item: RateLimitItem, *key: str) -> bool:
        assert self.limiter is not None
        return self.limiter.hit(item, *key)

    def _too_many(self, scope: Scope, item: RateLimitItem, kind: str, per: str, who: str
                  ) -> Response:
        assert self.limiter is not None
        stats = self.limiter.get_window_stats(item, kind, per, who)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        whose = "同一令牌" if per == "token" else "同一地址"
        what = {"writes": "写", "reads": "读", "codes": "获取验证码"}[kind]
        detail = (f"{whose}每{_zh_window(item)}最多 {item.amount} 次{what}请求，"
                  f"请 {retry} 秒后再试")
        response = problem(429, "rate_limited", "请求过于频繁", detail, Request(scope),
                           limit=str(item), per=per, retry_after=retry)
        response.headers["Retry-After"] = str(retry)
        return response

    # ------------------------------------------------------------------------------- pages

    def page_policy(self, body: bytes, headers: Headers) -> str:
        """Return the policy for an HTML page: its own inline scripts allowed by hash."""
        encoding = headers.get("content-encoding", "").strip().lower()
        content_type = headers.get("content-type", "")
        key = hashlib.sha256(body + f"\n{encoding}\n{content_type}".encode()).digest()
        policy = self._policies.get(key)
        if policy is not None:
            self._policies.move_to_end(key)
            return policy
        try:
            raw = gzip.decompress(body) if encoding == "gzip" else body
        except (OSError, EOFError):
            raw = b""
        if encoding not in ("", "identity", "gzip"):
            raw = b""  # an encoding we do not read: no inline script is allowed
        charset = content_type.partition("charset=")[2].strip() or "utf-8"
        try:
            html = raw.decode(charset, errors="replace")
        except LookupError:
            html = raw.decode("utf-8", errors="replace")
        policy = content_security_policy(inline_script_hashes(html))
        self._policies[key] = policy
        if len(self._policies) > 64:
            self._policies.popitem(last=False)
        return policy

    def too_large(self, scope: Scope) -> Response:
        """Make the 413 answer, naming the limit that applied (a route's own or the setting)."""
        limit = int(scope.get(MAX_BODY_SIZE_SCOPE_KEY, self.max_body_bytes))
        return problem(413, "payload_too_large", "请求体过大",
                       f"请求体超过上限 {limit} 字节", Request(scope), max_bytes=limit)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


#: Codes of a 413 the body cap caused: Starlette's exception, as api/errors.py words an
#: HTTPException (from the status phrase, which differs between Python versions), or ours.
_CAP_CODES = frozenset({HTTPStatus(413).phrase.lower().replace(" ", "_"), "content_too_large",
                        "request_entity_too_large", "payload_too_large"})


def _route_problem(start: Message, body: bytes) -> bool:
    """Tell whether a 413 is a route's own problem+json, not the body cap's."""
    content_type = Headers(raw=start.get("headers", [])).get("content-type", "")
    if not content_type.startswith(PROBLEM_JSON):
        return False
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return False
    return isinstance(code, str) and code not in _CAP_CODES


class _Outgoing:
    """The guarded ``send`` of one request.

    It adds the headers, holds an HTML page back until its scripts are hashed, and turns any 413
    into the problem+json answer.
    """

    def __init__(self, guard: PublicGuard, scope: Scope, send: Send) -> None:
        self.guard, self.scope, self.send = guard, scope, send
        self.replaced = False
        self.page_start: Message | None = None
        self.page_body: list[bytes] = []
        self.held_413: Message | None = None
        self.held_body: list[bytes] = []

    async def _start(self, message: Message) -> None:
        message.setdefault("headers", [])
        headers = MutableHeaders(scope=message)
        have = {k for k, _ in headers.raw}
        for name, value in _HEADER_ITEMS:
            # A 304 keeps the policy of the page it revalidates (browsers merge its headers).
            if name not in have and not (message["status"] == 304
                                         and name == b"content-security-policy"):
                headers.raw.append((name, value))
        await self.send(message)

    async def __call__(self, message: Message) -> None:
        if self.replaced:
            return  # the app's own 413 body: already answered
        kind = message["type"]
        if kind == "http.response.start":
            if message["status"] == 413:
                self.held_413 = message  # kept or replaced once its body is read
                return
            headers = Headers(raw=message.get("headers", []))
            if (message["status"] != 304 and "content-security-policy" not in headers
                    and headers.get("content-type", "").startswith("text/html")):
                self.page_start = message  # sent once the body is here
                return
            await self._start(message)
            return
        if self.held_413 is not None:
            await self._held_413(message)
            return
        if self.page_start is not None:
            if kind == "http.response.body":
                self.page_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(self.page_body)
                start, self.page_start = self.page_start, None
                policy = self.guard.page_policy(body, Headers(raw=start.get("headers", [])))
                MutableHeaders(scope=start).raw.append(
                    (b"content-security-policy", policy.encode("latin-1")))
                await self._start(start)
                await self.send({"type": "http.response.body", "body": body})
                return
            start, self.page_start = self.page_start, None  # e.g. pathsend: no hashing
            await self._start(start)
        await self.send(message)

    async def _held_413(self, message: Message) -> None:
        """Pass a route's own 413 problem (``photo_too_large``); make any other the cap's."""
        assert self.held_413 is not None
        if message["type"] == "http.response.body":
            self.held_body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
        start, self.held_413 = self.held_413, None
        body = b"".join(self.held_body)
        if _route_problem(start, body):
            await self._start(start)
            await self.send({"type": "http.response.body", "body": body})
            return
        self.replaced = True
        await self.guard.too_large(self.scope)(self.scope, _no_body, self._raw)

    async def _raw(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._start(message)
        else:
            await self.send(message)
