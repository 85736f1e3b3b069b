"""Shared by the page tests: a real uvicorn server, pages watched for errors, sign-in codes.

Each test module starts its own ``uvicorn api.main:app`` subprocess on a free 127.0.0.1 port
(:func:`run_server`: its own SQLite database, no webhook and ``SIGNIN_LOG_CODES``, so the
one-time sign-in codes appear in its log) and drives Debian's chromium (fixtures in
``conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import geo

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1280, "height": 800}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def masked(phone: str) -> str:
    """A phone number as the server logs and shows it: ``138****1234``."""
    return phone[:3] + "****" + phone[-4:]


@dataclass
class Server:
    """The uvicorn subprocess: its URL, cache, database, environment and log."""

    base: str
    cache: Path
    db_url: str
    env: dict[str, str]
    log: Path

    def call(self, method: str, path: str, body: Any = None,
             token: str | None = None) -> Any:
        """One JSON API call (raises ``urllib.error.HTTPError`` on 4xx/5xx)."""
        data = None if body is None else json.dumps(body).encode()
        url = self.base + urllib.parse.quote(path, safe="/?=&,:.-")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def get_bytes(self, path: str, token: str | None = None) -> bytes:
        """The raw body of a GET (e.g. a photo)."""
        req = urllib.request.Request(self.base + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return bytes(r.read())

    def log_size(self) -> int:
        """Where the log ends now (bytes): pass it to :meth:`code_for` before asking a code."""
        return self.log.stat().st_size

    def code_for(self, phone: str, after: int, timeout: float = 15) -> str:
        """The one-time code the server logged for a phone after ``after`` bytes of log."""
        pattern = rf"一次性验证码 {re.escape(masked(phone))}: (\d{{6}})"
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[after:].decode(errors="replace")
            found = re.findall(pattern, text)
            if found:
                return str(found[-1])
            time.sleep(0.1)
        raise AssertionError(f"no sign-in code logged for {masked(phone)}:\n{text[-2000:]}")

    def cli(self, *args: str) -> str:
        """Run ``practice-circle ARGS`` against this server's cache and database; its stdout."""
        done = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout


@contextlib.contextmanager
def run_server(cache_dir: Path, tmp: Path, *, copy_cache: bool = True,
               env: dict[str, str] | None = None,
               before: Callable[[str], None] | None = None) -> Iterator[Server]:
    """Run ``uvicorn api.main:app`` on a free port until the block ends.

    Parameters
    ----------
    cache_dir
        The session's built cache (the ``cache_dir`` fixture).
    tmp
        A fresh directory for the database, the log and (``copy_cache``) the cache copy.
    copy_cache
        Serve from a copy of the default district's cache (the server then has its own key
        file and evidence folder); otherwise from ``cache_dir`` itself.
    env
        Extra settings (``PRACTICE_CIRCLE_*``) for the server.
    before
        Called with the database URL before the server starts (e.g. to seed users).
    """
    if copy_cache:
        cache = tmp / "cache"
        shutil.copytree(cache_dir / "districts" / geo.DEFAULT_DISTRICT,
                        cache / "districts" / geo.DEFAULT_DISTRICT)
        for f in cache_dir.glob("*.parquet"):
            shutil.copy(f, cache / f.name)
    else:
        cache = cache_dir
    db_url = f"sqlite:///{tmp / 'server.db'}"
    if before is not None:
        before(db_url)
    full_env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache),
                "PRACTICE_CIRCLE_DISTRICT": geo.DEFAULT_DISTRICT, "PRACTICE_CIRCLE_DISTRICTS": "",
                "PRACTICE_CIRCLE_DATABASE_URL": db_url, "PRACTICE_CIRCLE_WEBHOOK_URL": "",
                # no SMS gateway: codes go to the log (as `make run`); many sign-ins from one
                # address, so the per-address code limit is raised (tests/api/test_signin.py)
                "PRACTICE_CIRCLE_SIGNIN_LOG_CODES": "true",
                "PRACTICE_CIRCLE_RATE_LIMIT_SIGNIN": "1000/minute",
                "PRACTICE_CIRCLE_EVIDENCE_DIR": str(tmp / "evidence"),
                "PYTHONIOENCODING": "utf-8", **(env or {})}
    port = free_port()
    log_path = tmp / "uvicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        srv = Server(f"http://127.0.0.1:{port}", cache, db_url, full_env, log_path)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    srv.call("GET", "/health")
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail("uvicorn did not start:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.25)
            yield srv
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


@dataclass
class Phone:
    """A page in its own browser context, with every request and error it had."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def external(self) -> list[str]:
        """Requests that left 127.0.0.1 (there must be none)."""
        return [u for u in self.requests
                if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))]

    def ready(self, view: str, timeout: float = 15000) -> None:
        """Wait until the phone page's view has rendered (its data loaded)."""
        self.page.wait_for_selector(f"body[data-ready='{view}'] #app[aria-busy='false']",
                                    timeout=timeout)

    def token(self) -> str:
        """The bearer token the page keeps (localStorage ``pc-token``, shared by /m/ and /desk/)."""
        return str(self.page.evaluate("() => localStorage.getItem('pc-token')"))


def watch(page: Any, base: str) -> Phone:
    """Record a page's requests, console errors and uncaught exceptions."""
    ph = Phone(page, base)
    # A 4xx answer the page handles (e.g. a wrong code) is logged by chromium as a failed load.
    page.on("console", lambda m: ph.errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("pageerror", lambda e: ph.errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: ph.requests.append(r.url))
    return ph


def sign_in(ph: Phone, server: Server, number: str) -> None:
    """Sign in on the phone page: phone, 获取验证码 (then counting down), the logged code."""
    page = ph.page
    ph.ready("login")
    page.fill("#login-phone", number)
    mark = server.log_size()
    page.click("#login-send")
    page.wait_for_function("() => { const b = document.getElementById('login-send');"
                           " return b.disabled && /秒后可重发/.test(b.textContent); }")
    left = int(page.get_attribute("#login-send", "data-left") or 0)
    assert 55 <= left <= 60
    page.fill("#login-code", server.code_for(number, mark))
    page.click("#login-submit")
    page.wait_for_function("() => (document.body.dataset.ready || 'login') !== 'login'")


def signed_in_as(ph: Phone, token: str, view: str) -> None:
    """Open a view with a token already stored (as after an earlier sign-in on this phone)."""
    ph.page.evaluate("(t) => localStorage.setItem('pc-token', t)", token)
    ph.page.goto(f"{ph.base}/m/?signed-in#/{view}")  # a new query: a fresh load, not a hash change


def screenshot(ph: Phone, name: str, *, full_page: bool = False) -> Path:
    """Save what the page shows (its passing toast hidden) as ``artifacts/NAME``."""
    ARTIFACTS.mkdir(exist_ok=True)
    ph.page.evaluate("() => document.querySelectorAll('#toast, #desk-status')"
                     ".forEach(t => { t.hidden = true; })")
    path = ARTIFACTS / name
    if not full_page:
        ph.page.screenshot(path=str(path))  # the viewport (360 x 640 on a phone)
        return path
    # The whole page in a viewport as tall as it: a full_page shot would leave the fixed tab
    # bar where the viewport ended, over the content.
    size = ph.page.viewport_size
    height = ph.page.evaluate("() => document.scrollingElement.scrollHeight")
    ph.page.set_viewport_size({"width": size["width"], "height": height})
    try:
        ph.page.screenshot(path=str(path))
    finally:
        ph.page.set_viewport_size(size)
    return path
