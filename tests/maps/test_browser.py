"""The practice map in a real browser (Debian's chromium) against a real uvicorn server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest

import geo
from maps import assets
from maps.page import LAYER_NAMES
from tests.browser import (
    MIN_TARGET_PX,
    MIN_TEXT_PX,
    launch,
    measure_js,
    poor_contrast_js,
    small_text_js,
    sync_playwright,
    too_small,
)
from tests.maps.helpers import skip_or_fail

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
EVIL = "<img src=x onerror=alert(1)>"
INJECTED = "注入测试区"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _inject(cache_dir: Path, cache: Path) -> None:
    """Copy the session district, plus a copy named INJECTED with one position renamed EVIL."""
    src = cache_dir / "districts" / geo.DEFAULT_DISTRICT
    shutil.copytree(src, cache / "districts" / geo.DEFAULT_DISTRICT)
    for f in cache_dir.glob("*.parquet"):
        shutil.copy(f, cache / f.name)
    evil = cache / "districts" / INJECTED
    shutil.copytree(src, evil)
    pos = gpd.read_parquet(evil / "positions.parquet")
    i = pos.index[pos["level"] == "community"][0]
    old = pos.at[i, "name"]
    pos.at[i, "name"] = EVIL
    # A district of its own has ids of its own (they share one dispatch database).
    prefix = f"{geo.DEFAULT_DISTRICT}-"
    for col in ("site_id", "parent_id"):
        pos[col] = pos[col].str.replace(prefix, f"{INJECTED}-", n=1, regex=False)
    pos.to_parquet(evil / "positions.parquet")
    teams = pd.read_parquet(evil / "teams.parquet")
    teams["name"] = teams["name"].str.replace(old, EVIL, regex=False)
    for col in ("site_id", "team_id"):
        teams[col] = teams[col].str.replace(prefix, f"{INJECTED}-", n=1, regex=False)
    teams.to_parquet(evil / "teams.parquet")
    meta = json.loads((evil / "meta.json").read_text())
    meta["name"] = INJECTED
    (evil / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))


@pytest.fixture(scope="module")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``practice-circle serve``: uvicorn in a subprocess on a free port."""
    if assets.missing_assets():
        skip_or_fail("map assets missing: run `npm ci` at the repository root")
    cache = tmp_path_factory.mktemp("map-browser-cache")
    _inject(cache_dir, cache)
    with serve(cache, PRACTICE_CIRCLE_DISTRICTS=INJECTED) as base:
        yield base


@contextmanager
def serve(cache: Path, **settings: str) -> Iterator[str]:
    """Run uvicorn on the districts in ``cache`` (its own SQLite there); yield its base URL."""
    port = _free_port()
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache),
           "PRACTICE_CIRCLE_DISTRICT": geo.DEFAULT_DISTRICT, **settings}
    env.pop("PRACTICE_CIRCLE_DATABASE_URL", None)
    log = (cache / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(base + "/health")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    pytest.fail("uvicorn did not start:\n"
                                + (cache / "uvicorn.log").read_text()[-3000:])
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@dataclass
class Visit:
    """A page with everything it logged and every request it made."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def external(self) -> list[str]:
        return [u for u in self.requests
                if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))]


@pytest.fixture
def visit(browser: Any, server: str) -> Iterator[Any]:
    contexts = []

    def open_(path: str = "/map", *, width: int = 1280, height: int = 800,
              **context: Any) -> Visit:
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                  **context)
        contexts.append(ctx)
        page = ctx.new_page()
        v = Visit(page)
        page.on("console", lambda m: v.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: v.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: v.requests.append(r.url))

        def on_dialog(d: Any) -> None:
            v.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(server + path)
        # a function, not an expression: the page's CSP forbids eval, which an expression needs
        page.wait_for_function("() => window.practiceMap && window.practiceMap.ready === true",
                               timeout=20000)
        return v

    yield open_
    for ctx in contexts:
        ctx.close()


def _non_blank(v: Visit, png: bytes) -> float:
    """Standard deviation of the screenshot's grey levels (0 for a blank page)."""
    data = base64.b64encode(png).decode()
    page = v.page.context.new_page()
    try:
        return float(page.evaluate(
            """async (src) => {
                const img = new Image();
                img.src = 'data:image/png;base64,' + src;
                await img.decode();
                const c = document.createElement('canvas');
                c.width = img.width; c.height = img.height;
                const g = c.getContext('2d');
                g.drawImage(img, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data;
                let n = 0, s = 0, s2 = 0;
                for (let i = 0; i < d.length; i += 16) {
                    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
                    n++; s += y; s2 += y * y;
                }
                return Math.sqrt(s2 / n - (s / n) ** 2);
            }""", data))
    finally:
        page.close()


def _screenshot(v: Visit, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    png = v.page.screenshot(path=str(ARTIFACTS / name))
    assert _non_blank(v, png) > 20, f"{name} looks blank"


def _map_point(v: Visit) -> tuple[float, float]:
    """A point on the map's own surface (not on a marker, cluster or control) near its middle."""
    point = v.page.evaluate(
        """() => {
            const box = window.practiceMap.map.getContainer().getBoundingClientRect();
            for (let r = 0; r < 200; r += 12) {
                for (let a = 0; a < 360; a += 30) {
                    const x = box.left + box.width / 2 + r * Math.cos(a * Math.PI / 180);
                    const y = box.top + box.height / 2 + r * Math.sin(a * Math.PI / 180);
                    const el = document.elementFromPoint(x, y);
                    if (el && !el.closest('.leaflet-marker-icon, .leaflet-control')) {
                        return [x, y];
                    }
                }
            }
            return null;
        }""")
    assert point, "no free spot on the map"
    return float(point[0]), float(point[1])


def test_map_lights_up_offline_with_every_position(visit: Any, server: str) -> None:
    v = visit("/map")
    page = v.page
    n_sites = len(_get(server + "/sites")["features"])
    assert n_sites > 0
    assert page.evaluate("practiceMap.visibleCount()") == n_sites
    count = page.locator("#pc-count")
    assert count.get_attribute("data-visible") == str(n_sites)
    assert count.get_attribute("data-total") == str(n_sites)
    assert f"显示 {n_sites} / {n_sites} 个阵地" in count.inner_text()
    # clustered when zoomed out: fewer icons than positions, and every one accounted for
    icons = page.evaluate("""() => {
        let n = 0;
        document.querySelectorAll('.pc-cluster').forEach(c => n += Number(c.textContent));
        return [document.querySelectorAll('.pc-cluster').length,
                n + document.querySelectorAll('.pc-marker').length];
    }""")
    assert icons[0] > 0 and icons[1] <= n_sites
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    attribution = page.locator(".leaflet-control-attribution")
    assert attribution.is_visible() and "© OpenStreetMap contributors" in attribution.inner_text()
    assert page.locator(".pc-demo").is_visible()
    assert page.locator(".pc-demo").inner_text() == "示例数据"
    # the offline basemap was drawn into its own canvas; no tile was asked for
    assert page.locator(".leaflet-pc-base-pane canvas").count() == 1
    assert not [u for u in v.requests if "tile" in u]
    page.wait_for_timeout(300)
    assert v.errors == []
    assert v.external == []
    _screenshot(v, "map-1280.png")


def test_phone_width(visit: Any) -> None:
    v = visit("/map", width=360, height=740)
    page = v.page
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
    box = page.locator(".pc-map").bounding_box()
    assert box["width"] == 360 and box["height"] >= 300
    for sel in ("#pc-search", "#pc-category", "#pc-locate", "#pc-large"):
        b = page.locator(sel).bounding_box()
        assert b and b["x"] >= 0 and b["x"] + b["width"] <= 360, sel
    assert v.errors == [] and v.external == []
    _screenshot(v, "map-360.png")


def search_for(page: Any, q: str) -> None:
    """Type a query and wait for the answer of GET /search to be on the page."""
    page.fill("#pc-search", q)
    page.wait_for_function(
        "(q) => { const b = document.querySelector('#pc-results-box');"
        " return b.dataset.query === q && b.dataset.state === 'done'; }", arg=q.strip(),
        timeout=10000)


def test_search_narrows_and_lists(visit: Any, server: str) -> None:
    v = visit("/map")
    page = v.page
    n_sites = len(_get(server + "/sites")["features"])
    search_for(page, "小区")
    results = page.locator("#pc-results .pc-item-name")
    n = results.count()
    assert 0 < n < n_sites
    assert all("小区" in t for t in results.all_inner_texts())
    assert page.evaluate("practiceMap.visibleCount()") == n
    assert page.locator("#pc-count").get_attribute("data-visible") == str(n)
    page.locator("#pc-results .pc-item").first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert results.all_inner_texts()[0] in popup.inner_text()
    for label in ("层级：", "服务类别：", "开放时间：未知", "示例数据"):
        assert label in popup.inner_text()
    search_for(page, "没有这样的名字")
    assert "没有名称、地址或拼音首字母与" in page.locator("#pc-results").inner_text()
    assert page.evaluate("practiceMap.visibleCount()") == 0
    search_for(page, "")
    assert page.evaluate("practiceMap.visibleCount()") == n_sites
    assert v.errors == [] and v.external == []


def test_category_and_level_filters(visit: Any, server: str) -> None:
    v = visit("/map")
    page = v.page
    legal = len(_get(server + "/sites?category=legal")["features"])
    page.select_option("#pc-category", "legal")
    assert page.evaluate("practiceMap.visibleCount()") == legal
    page.select_option("#pc-category", "")
    sites = len(_get(server + "/sites?level=site")["features"])
    total = page.evaluate("practiceMap.siteCount()")
    page.locator('#pc-levels input[data-level="site"]').uncheck()
    assert page.evaluate("practiceMap.visibleCount()") == total - sites
    assert v.errors == [] and v.external == []


def _nearest_from_ui(page: Any) -> list[dict[str, str]]:
    page.locator("#pc-nearest-list .pc-item").first.wait_for()
    return page.evaluate("""() => [...document.querySelectorAll('#pc-nearest-list .pc-item')]
        .map(b => ({id: b.dataset.siteId, name: b.querySelector('.pc-item-name').textContent,
                    walk: b.querySelector('.pc-item-walk').textContent}))""")


def test_click_shows_nearest_like_the_api(visit: Any, server: str) -> None:
    v = visit("/map")
    page = v.page
    x, y = _map_point(v)
    expected = page.evaluate(
        "([x, y]) => { const p = practiceMap.map.containerPointToLatLng(practiceMap.map"
        ".mouseEventToContainerPoint({clientX: x, clientY: y})); return [p.lng, p.lat]; }",
        [x, y])
    page.mouse.click(x, y)
    ui = _nearest_from_ui(page)
    q = page.evaluate("practiceMap.lastQuery()")
    assert abs(q["lon"] - expected[0]) < 1e-4 and abs(q["lat"] - expected[1]) < 1e-4
    api = _get(server + "/nearest?" + urllib.parse.urlencode(
        {"lon": q["lon"], "lat": q["lat"], "limit": 3}))["features"]
    assert [u["id"] for u in ui] == [f["properties"]["site_id"] for f in api]
    first = api[0]["properties"]
    assert ui[0]["name"] == first["name"]
    assert ui[0]["walk"].startswith(f"步行 {first['minutes']} 分钟")
    # the route is drawn, with the starting point labelled
    assert page.locator(".leaflet-pc-route-pane canvas").count() == 1
    assert page.locator(".pc-me").inner_text() == "出发点"
    assert v.errors == [] and v.external == []


def test_locate_me(visit: Any, server: str) -> None:
    lon, lat = 112.5617, 37.8006
    v = visit("/map", width=360, height=740, permissions=["geolocation"],
              geolocation={"longitude": lon, "latitude": lat})
    page = v.page
    page.click("#pc-locate")
    ui = _nearest_from_ui(page)
    api = _get(server + "/nearest?" + urllib.parse.urlencode({"lon": lon, "lat": lat}))
    first = api["features"][0]["properties"]
    assert ui[0]["id"] == first["site_id"]
    assert ui[0]["walk"].startswith(f"步行 {first['minutes']} 分钟")
    assert "从您的位置" in page.locator("#pc-nearest-from").inner_text()
    assert v.errors == [] and v.external == []


_MEASURE = measure_js(
    """el => {
        const r = el.getBoundingClientRect();
        const s = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
            && r.bottom > 0 && r.top < innerHeight;
    }""",
    """
    const targets = [...document.querySelectorAll(
        '#pc-panel button, #pc-panel input:not([type=checkbox]), #pc-panel select, ' +
        '#pc-panel summary, .pc-level, .leaflet-bar a, .leaflet-control-layers-toggle, ' +
        '.leaflet-popup-close-button')].filter(visible).map(el => {
            const r = el.getBoundingClientRect();
            return {what: el.id || el.className || el.tagName, w: r.width, h: r.height};
        });""",
    small_text_js("svg, script, style, .leaflet-control-layers-list"),
    poor_contrast_js("#pc-panel *"),
    returns="targets, small, poor")


def test_large_mode_targets_text_and_contrast(visit: Any) -> None:
    v = visit("/map", width=360, height=740)
    page = v.page
    page.click("#pc-large")
    assert page.get_attribute("#pc-large", "aria-pressed") == "true"
    search_for(page, "小区")
    page.click("#pc-collapse")
    page.click("#pc-collapse")
    page.wait_for_timeout(200)
    measured = page.evaluate(_MEASURE)
    assert len(measured["targets"]) >= 8
    assert too_small(measured["targets"]) == []
    assert measured["small"] == []
    assert measured["poor"] == []
    # markers grow to touch size too
    sizes = page.evaluate("""() => [...document.querySelectorAll('.pc-marker')]
        .map(m => Math.min(m.offsetWidth, m.offsetHeight))""")
    assert sizes and min(sizes) >= MIN_TARGET_PX
    _screenshot(v, "map-360-large.png")
    # the layer control, opened, has big rows too
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers-list").wait_for()
    rows = page.evaluate("""() => [...document.querySelectorAll('.leaflet-control-layers label')]
        .map(l => [l.getBoundingClientRect().height, parseFloat(getComputedStyle(l).fontSize)])""")
    assert rows and all(h >= MIN_TARGET_PX and size >= MIN_TEXT_PX for h, size in rows)
    assert v.errors == [] and v.external == []


def test_osm_names_show_as_text(visit: Any) -> None:
    v = visit("/map?district=" + urllib.parse.quote(INJECTED))
    page = v.page
    search_for(page, "<img")
    item = page.locator("#pc-results .pc-item-name")
    assert item.count() == 1 and item.inner_text() == EVIL
    page.locator("#pc-results .pc-item").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert EVIL in popup.inner_text()  # the name and its teams, as text
    assert popup.locator("img").count() == 0
    assert page.locator(".pc-marker[title^='<img']").count() == 1
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    page.wait_for_timeout(300)
    assert v.dialogs == []
    assert v.errors == [] and v.external == []


_PLANNER = {  # layer key: the API path the map fetches it from
    "cells": "/coverage/cells",
    "serviceAreas": "/service-areas",
    "gaps": "/gaps",
    "recommendations": "/recommendations",
}


def _settle(page: Any) -> None:
    """Wait until the map stands still (no pan or zoom, no cluster animation), then two frames."""
    page.wait_for_function(
        "() => !window.__pcMoving && !document.querySelector('.leaflet-cluster-anim')",
        timeout=10000)
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


_WATCH_MOVES = """() => {
    const m = practiceMap.map;
    window.__pcMoving = false;
    window.__pcPopup = null;
    window.__pcEvents = [];
    m.on('movestart zoomstart', () => { window.__pcMoving = true; });
    m.on('moveend', () => { window.__pcMoving = false; });
    m.on('popupopen', e => { window.__pcPopup = e.popup; });
    m.on('popupclose', e => { if (window.__pcPopup === e.popup) window.__pcPopup = null; });
    m.on('click popupopen popupclose movestart zoomstart', e => window.__pcEvents.push(e.type));
}"""


def test_planner_layers_load_when_toggled(visit: Any) -> None:
    v = visit("/map")
    page = v.page
    assert not [u for u in v.requests if any(p in u for p in _PLANNER.values())]  # lazy
    page.hover(".leaflet-control-layers")
    for key, path in _PLANNER.items():
        page.get_by_text(LAYER_NAMES[key]).click()
        page.wait_for_function(
            "(key) => ['loaded', 'missing', 'failed'].includes(document.querySelector("
            "`#pc-layer-status li[data-layer=\"${key}\"]`)?.dataset.state)", arg=key,
            timeout=60000)
        li = page.locator(f'#pc-layer-status li[data-layer="{key}"]')
        assert li.get_attribute("data-state") == "loaded", li.inner_text()
        urls = [u for u in v.requests if urllib.parse.urlsplit(u).path == path]
        assert len(urls) == 1, urls
        # what the map shows is what the API answers for the same URL
        answer = _get(urls[0])["features"]
        assert answer, key
        assert li.get_attribute("data-count") == str(len(answer)), li.inner_text()
        assert f"已加载 {len(answer)} 个要素" in li.inner_text()
    assert page.locator("#pc-cells-legend").is_visible()
    service = next(u for u in v.requests if "/service-areas" in u)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(service).query)["minutes"] == ["15"]
    assert v.errors == []
    assert v.external == []


def test_recommended_site_popup_speaks_chinese(visit: Any, server: str) -> None:
    v = visit("/map")
    page = v.page
    page.hover(".leaflet-control-layers")
    page.get_by_text(LAYER_NAMES["sites"]).click()  # off: nothing above the planner points
    page.get_by_text(LAYER_NAMES["recommendations"]).click()
    status = page.locator('#pc-layer-status li[data-layer="recommendations"]')
    page.wait_for_function(
        "() => document.querySelector('#pc-layer-status li[data-layer=\"recommendations\"]')"
        "?.dataset.state === 'loaded'", timeout=60000)
    url = next(u for u in v.requests if "/recommendations" in u)
    picks = _get(url)["features"]
    assert picks, status.inner_text()
    page.mouse.move(5, 300)  # let the layer control fold away
    page.evaluate(_WATCH_MOVES)
    first = picks[0]
    lon, lat = first["geometry"]["coordinates"]
    page.evaluate("([lat, lon]) => { practiceMap.map.setView([lat, lon], 17, {animate: false}); }",
                  [lat, lon])
    _settle(page)
    x, y = page.evaluate("""([lat, lon]) => {
        const m = practiceMap.map, p = m.latLngToContainerPoint([lat, lon]);
        const box = m.getContainer().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", [lat, lon])
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    p = first["properties"]
    assert p["label"] in text and "规划 · 推荐新址" not in text
    assert "推荐新址" in text and "推荐顺序：第 1 位" in text
    assert f"新增覆盖居民（估算）：{p['new_residents']:,.1f}".rstrip("0").rstrip(".") in text
    assert f"新增覆盖网格：{p['new_cells']} 个" in text
    share = round(p["cumulative_f15"] * 100, 1)
    assert f"累计覆盖率：{share:g}%" in text
    assert "相对指数" in text  # the residents are an index, and the popup says so
    for key in p:
        assert f"{key}：" not in text, key
    assert "：是" not in text and "：否" not in text and "true" not in text.lower()
    assert page.evaluate("practiceMap.lastQuery()") is None  # the click did not reach the map
    assert v.errors == [] and v.external == []


_TAP_POINT = """(id) => {
    const icon = document.querySelector(`.pc-marker[data-site-id="${id}"]`);
    if (!icon) return null;
    const r = icon.getBoundingClientRect();
    for (const [fx, fy] of [[0.5, 0.5], [0.35, 0.5], [0.65, 0.5], [0.5, 0.35], [0.5, 0.65]]) {
        const x = r.left + r.width * fx, y = r.top + r.height * fy;
        const hit = document.elementFromPoint(x, y);
        if (hit && hit.closest('.pc-marker') === icon) return [x, y];
    }
    return null;
}"""


def _show_unclustered(page: Any, sid: str, lon: float, lat: float) -> tuple[float, float]:
    """Centre the map on a position, closer until its marker can be tapped (no other on top)."""
    for zoom in (16, 17, 18, 19):
        page.evaluate("([lat, lon, z]) => { practiceMap.map.closePopup();"
                      " practiceMap.map.setView([lat, lon], z, {animate: false}); }",
                      [lat, lon, zoom])
        _settle(page)
        # a closed popup fades out, still in the page for a moment: let it go before tapping
        page.wait_for_function("() => !document.querySelector('.leaflet-popup')")
        point = page.evaluate(_TAP_POINT, sid)
        if point:
            return float(point[0]), float(point[1])
    pytest.fail(f"{sid}: no point of its marker can be tapped, even at zoom 19")


def _popup_state(page: Any, sid: str) -> dict[str, Any]:
    return dict(page.evaluate("""(id) => {
        const m = practiceMap.map, popup = window.__pcPopup;
        const pop = popup && m.hasLayer(popup) ? popup.getElement() : null;
        const icon = document.querySelector(`.pc-marker[data-site-id="${id}"]`);
        const box = m.getContainer().getBoundingClientRect();
        const r = icon && icon.getBoundingClientRect();
        return {
            open: !!pop,
            title: pop ? pop.querySelector('.pc-pop-title').textContent : null,
            zoom: m.getZoom(),
            markerInView: !!r && r.top >= box.top && r.bottom <= box.bottom
                && r.left >= box.left && r.right <= box.right,
            query: practiceMap.lastQuery(),
            marker: r ? [r.left, r.top, r.width, r.height] : null,
            events: window.__pcEvents.splice(0),
        };
    }""", sid))


@pytest.mark.parametrize("large", [False, True], ids=["standard", "elder-mode"])
def test_tapping_a_position_on_a_phone_keeps_its_popup_open(
    visit: Any, server: str, large: bool
) -> None:
    v = visit(f"/map?large={int(large)}", width=360, height=740, has_touch=True,
              is_mobile=True)
    page = v.page
    assert page.evaluate("document.documentElement.classList.contains('pc-large')") is large
    page.evaluate(_WATCH_MOVES)
    sites = _get(server + "/sites")["features"]
    bad = []
    for f in sites:
        sid, name = f["properties"]["site_id"], f["properties"]["name"]
        lon, lat = f["geometry"]["coordinates"]
        x, y = _show_unclustered(page, sid, lon, lat)
        page.touchscreen.tap(x, y)
        _settle(page)  # the popup pans itself into view: wait until that move is over
        state = _popup_state(page, sid)
        if not (state["open"] and state["title"] == name and state["markerInView"]
                and state["query"] is None):
            bad.append((sid, f["properties"]["level"], (x, y), state))
    assert bad == [], f"{len(bad)} of {len(sites)} positions: {bad}"
    assert v.errors == [] and v.external == []


def test_search_result_opens_the_position_on_a_phone(visit: Any, server: str) -> None:
    v = visit("/map", width=360, height=740, has_touch=True, is_mobile=True)
    page = v.page
    page.evaluate(_WATCH_MOVES)
    sites = _get(server + "/sites")["features"]
    bad = []
    for f in sites:
        sid, name = f["properties"]["site_id"], f["properties"]["name"]
        page.evaluate("() => { practiceMap.map.closePopup();"
                      " practiceMap.map.setZoom(13, {animate: false}); }")
        _settle(page)
        search_for(page, name)
        page.locator(f'#pc-results .pc-item[data-site-id="{sid}"]').tap()
        _settle(page)
        state = _popup_state(page, sid)
        if not (state["open"] and state["title"] == name and state["zoom"] >= 16
                and state["markerInView"] and state["query"] is None):
            bad.append((sid, f["properties"]["level"], state))
    assert bad == [], f"{len(bad)} of {len(sites)} positions: {bad}"
    assert v.errors == [] and v.external == []
