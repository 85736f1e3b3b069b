"""Shared by the browser tests (tests/maps, tests/web): Debian's chromium and the 长辈版 measures.

The measuring scripts are put together in the page from JS parts: each test gives its own
``visible`` rule and its own set of targets, and the parts below find the text smaller than
:data:`MIN_TEXT_PX` and the text of poor contrast (WCAG AA, 4.5:1) the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.maps.helpers import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
#: 长辈版: every touch target at least this wide and tall (CSS px) ...
MIN_TARGET_PX = 44
#: ... and no text smaller than this.
MIN_TEXT_PX = 18


@contextmanager
def sync_playwright() -> Iterator[Any]:
    """Playwright's sync API (fails, or skips with PRACTICE_CIRCLE_SKIP_BROWSER=1, without it)."""
    if not CHROMIUM.exists():
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright: Any, *args: str) -> Any:
    """Debian's chromium with :data:`LAUNCH_ARGS` and any ``args`` of the test's own."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*LAUNCH_ARGS, *args])


def too_small(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured targets (``w``, ``h`` in CSS px) under :data:`MIN_TARGET_PX` either way."""
    return [t for t in targets if t["w"] < MIN_TARGET_PX or t["h"] < MIN_TARGET_PX]


def small_text_js(skip: str) -> str:
    """JS filling ``small`` with [text, px] of visible text under :data:`MIN_TEXT_PX`.

    Text inside an element matching the selector ``skip`` is left out; the script must
    define ``visible(el)`` first.
    """
    return """
    const small = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const t = walker.currentNode;
        if (!t.textContent.trim()) continue;
        const el = t.parentElement;
        if (!el || !visible(el) || el.closest('__SKIP__')) continue;
        const size = parseFloat(getComputedStyle(el).fontSize);
        if (size < __MIN__) small.push([t.textContent.trim().slice(0, 20), size]);
    }""".replace("__SKIP__", skip).replace("__MIN__", str(MIN_TEXT_PX))


def poor_contrast_js(scope: str, skip: str = "false") -> str:
    """JS filling ``poor`` with [text, ratio] of elements in ``scope`` under 4.5:1.

    Only visible elements with text of their own count, unless the JS condition ``skip``
    (on ``el``) holds; the background is the first opaque one up the tree (else white).
    """
    return """
    const lum = c => {
        const m = c.match(/[\\d.]+/g).map(Number);
        const f = v => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return [0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]), m.length > 3 ? m[3] : 1];
    };
    const background = el => {
        for (let e = el; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (lum(bg)[1] > 0.5) return bg;
        }
        return 'rgb(255, 255, 255)';
    };
    const poor = [];
    document.querySelectorAll('__SCOPE__').forEach(el => {
        if (!visible(el) || __SKIP__
            || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) return;
        const fg = lum(getComputedStyle(el).color)[0], bg = lum(background(el))[0];
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < 4.5) poor.push([el.textContent.trim().slice(0, 20), ratio]);
    });""".replace("__SCOPE__", scope).replace("__SKIP__", skip)


def measure_js(visible: str, *parts: str, returns: str) -> str:
    """A function for ``page.evaluate``: ``visible`` (a JS arrow function), ``parts``, a return.

    ``returns`` is the JS object literal's inside, e.g. ``"targets, small, poor"``.
    """
    body = "".join(parts)
    return f"""() => {{
    const visible = {visible};{body}
    return {{{returns}}};
}}"""
