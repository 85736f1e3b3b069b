"""Fixtures of the page tests: playwright, Debian's chromium, watched phone contexts.

A test module defines its own module-scoped ``server`` fixture (a
:func:`tests.web.helpers.run_server`), which :func:`phone` opens pages against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser import launch, sync_playwright
from tests.web.helpers import PHONE, Phone, Server, watch


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's sync API (fails, or skips with PRACTICE_CIRCLE_SKIP_BROWSER=1, without it)."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """Debian's chromium, one per module."""
    b = launch(playwright)
    yield b
    b.close()


@pytest.fixture
def phone(browser: Any, server: Server) -> Iterator[Callable[..., Phone]]:
    """Open pages in new contexts (a 360 x 640 phone with geolocation at ``at`` by default).

    At the end every context is closed, and no page may have sent a request beyond
    127.0.0.1 or had a console error or an uncaught exception.
    """
    contexts = []
    phones: list[Phone] = []

    def open_(at: tuple[float, float] | None, path: str = "/m/", *, via: Any = None,
              **context: Any) -> Phone:
        context.setdefault("viewport", PHONE)
        context.setdefault("has_touch", context["viewport"] == PHONE)
        context.setdefault("permissions", ["geolocation"] if at else [])
        if at:
            context["geolocation"] = {"longitude": at[0], "latitude": at[1]}
        ctx = (via or browser).new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                           **context)
        contexts.append(ctx)
        ph = watch(ctx.new_page(), server.base)
        phones.append(ph)
        ph.page.goto(server.base + path)
        return ph

    yield open_
    for ctx in contexts:
        ctx.close()
    for ph in phones:
        assert ph.external == [], ph.external
        assert ph.errors == [], ph.errors
