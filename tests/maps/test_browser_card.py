"""The residents' map finished, at 360 x 640 in Debian's chromium against a real uvicorn.

A position's card (address, tap-to-call phone, hours, teams, coming activities, 导航 with our
route first and links in each app's datum), search by pinyin initials without duplicate rows,
离我最近 above the fold with results beyond 15 minutes flagged, the route of the result chosen,
clusters named for screen readers, a grid palette for red-green colour blindness, and 长辈版
targets of 44 px, checkboxes included. No request leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Geod

import geo
from api.services.accounts import create_user
from api.storage.session import session_maker
from geo.datum import Crs, to_wgs84
from maps import assets
from maps.page import LAYER_NAMES
from tests.browser import measure_js, small_text_js, too_small
from tests.maps.helpers import skip_or_fail
from tests.maps.test_browser import (  # noqa: F401  (fixtures)
    _WATCH_MOVES,
    Visit,
    _get,
    _screenshot,
    _settle,
    browser,
    search_for,
    serve,
    visit,
)

pytestmark = pytest.mark.browser

W, H = 360, 640
GEOD = Geod(ellps="WGS84")
ADDRESS, PHONE, HOURS = "坞城路92号", "0351-7010 123", "周一至周五 09:00-17:00"
TEAM = "太嘉小区敬老志愿服务队"


def _send(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
          ) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read()), r.headers


@pytest.fixture(scope="module")
def seeded(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server whose 太嘉小区 has an address, phone, hours, a team and activities."""
    if assets.missing_assets():
        skip_or_fail("map assets missing: run `npm ci` at the repository root")
    cache = tmp_path_factory.mktemp("map-card-cache")
    src = cache_dir / "districts" / geo.DEFAULT_DISTRICT
    shutil.copytree(src, cache / "districts" / geo.DEFAULT_DISTRICT)
    for f in cache_dir.glob("*.parquet"):
        shutil.copy(f, cache / f.name)
    with serve(cache) as base:
        with session_maker(f"sqlite:///{cache / 'practice.db'}")() as s:
            _, token = create_user(s, role="admin", name="地图测试管理员")
            s.commit()
        admin = {"Authorization": f"Bearer {token}"}
        site = next(f["properties"] for f in _get(base + "/sites")["features"]
                    if f["properties"]["name"] == "太嘉小区")
        sid = site["site_id"]
        path = f"{base}/positions/{urllib.parse.quote(sid)}"
        _, _, headers = _send("GET", path)
        status, _, _ = _send("PATCH", path, {"address": ADDRESS, "phone": PHONE,
                                             "opening_hours": HOURS},
                             {**admin, "If-Match": headers["ETag"]})
        assert status == 200
        status, team, _ = _send("POST", base + "/teams", {
            "name": TEAM, "categories": ["elderly"], "site_id": sid, "capacity": 3}, admin)
        assert status == 201
        for title, days in (("重阳敬老义诊", 2), ("社区健康讲座", 5)):
            begin = datetime.now(UTC) + timedelta(days=days)
            status, _, _ = _send("POST", base + "/activities", {
                "title": title, "category": "health", "site_id": sid,
                "starts_at": begin.isoformat(), "ends_at": (begin + timedelta(hours=2)).isoformat(),
                "capacity": 20}, admin)
            assert status == 201
        yield {"base": base, "site_id": sid, "team": team}


@pytest.fixture(scope="module")
def server(seeded: dict[str, Any]) -> str:
    """The base URL the shared ``visit`` fixture opens pages on."""
    return str(seeded["base"])


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def _phone(v_open: Any, path: str = "/map", **kw: Any) -> Visit:
    v: Visit = v_open(path, width=W, height=H, **kw)
    v.page.evaluate(_WATCH_MOVES)  # so that _settle can tell when the map stands still
    return v


def _wait_card(page: Any, sid: str) -> Any:
    card = page.locator(f'.leaflet-popup .pc-card[data-site-id="{sid}"]')
    page.wait_for_function(
        "(id) => document.querySelector(`.leaflet-popup .pc-card[data-site-id=\"${id}\"]`)"
        "?.dataset.state === 'ready'", arg=sid, timeout=15000)
    _settle(page)  # the card grew and the map made room for it: let both finish moving
    return card


# ------------------------------------------------------------------------------ the card


def test_card_contact_hours_teams_activities_and_navigation(
    visit: Any, seeded: dict[str, Any]  # noqa: F811
) -> None:
    base, sid = seeded["base"], seeded["site_id"]
    v = _phone(visit)
    page = v.page
    api = _get(f"{base}/positions/{urllib.parse.quote(sid)}/card")
    # a start is known (a click on the map elsewhere): 导航 draws our route to this position
    start = (112.5617, 37.8006)
    page.evaluate("([lon, lat]) => practiceMap.nearest(lon, lat)", list(start))
    page.locator("#pc-nearest-list .pc-item").first.wait_for()
    page.evaluate("(id) => practiceMap.openCard(id)", sid)
    card = _wait_card(page, sid)
    text = card.inner_text()
    for expected in ("太嘉小区", f"地址：{ADDRESS}", f"开放时间：{HOURS}", TEAM, "重阳敬老义诊",
                     "社区健康讲座", "已报名 0/20", "示例数据"):
        assert expected in text, expected
    assert text.index("重阳敬老义诊") < text.index("社区健康讲座")  # soonest first
    tel = card.locator("a.pc-tel")
    assert tel.inner_text() == PHONE and tel.get_attribute("href") == "tel:03517010123"

    card.locator(".pc-nav-btn").click()
    assert card.locator(".pc-nav-btn").get_attribute("aria-expanded") == "true"
    page.wait_for_function(
        "(id) => practiceMap.drawnRoute() && practiceMap.drawnRoute().site_id === id", arg=sid,
        timeout=15000)
    route = _get(f"{base}/positions/{urllib.parse.quote(sid)}/route?" + urllib.parse.urlencode(
        {"lon": start[0], "lat": start[1]}))["features"][0]
    drawn = page.evaluate("practiceMap.drawnRoute()")
    assert drawn["coordinates"] == route["geometry"]["coordinates"]
    status = card.locator(".pc-nav-route")
    status.wait_for()
    assert status.inner_text().startswith("本图已显示步行路线：步行 "
                                          f"{route['properties']['minutes']} 分钟")
    # our route is shown first, then the other apps
    order = page.evaluate("""(id) => {
        const nav = document.querySelector(`.leaflet-popup .pc-card[data-site-id="${id}"] .pc-nav`);
        return [...nav.children].map(e => e.className);
    }""", sid)
    assert order[0] == "pc-nav-route" and order[-1] == "pc-nav-links"
    links = {a.get_attribute("data-app"): a for a in card.locator("a.pc-nav-link").all()}
    assert [links[k].inner_text() for k in ("amap", "baidu")] == ["高德地图", "百度地图"]
    here = (api["lon"], api["lat"])
    amap = urllib.parse.urlsplit(links["amap"].get_attribute("href"))
    assert amap.netloc == "uri.amap.com" and amap.path == "/navigation"
    q = urllib.parse.parse_qs(amap.query)
    glon, glat, name = q["to"][0].split(",")
    assert name == "太嘉小区" and q["mode"] == ["walk"] and q["coordinate"] == ["gaode"]
    assert [float(glon), float(glat)] == api["navigation"]["gcj02"]
    assert _metres(to_wgs84(float(glon), float(glat), crs=Crs.GCJ02), here) < 1.0
    assert _metres((float(glon), float(glat)), here) > 300  # really moved into GCJ-02
    baidu = urllib.parse.urlsplit(links["baidu"].get_attribute("href"))
    assert baidu.netloc == "api.map.baidu.com" and baidu.path == "/direction"
    q = urllib.parse.parse_qs(baidu.query)
    assert q["coord_type"] == ["bd09ll"] and q["mode"] == ["walking"]
    blat, blon = q["destination"][0].split("|")[0].removeprefix("latlng:").split(",")
    assert _metres(to_wgs84(float(blon), float(blat), crs=Crs.BD09), here) < 1.0
    for a in links.values():
        assert a.get_attribute("target") == "_blank" and "noopener" in a.get_attribute("rel")
    page.wait_for_timeout(200)
    _screenshot(v, "map-card-360.png")
    assert v.errors == [] and v.external == []


# ------------------------------------------------------------------------------ search


def test_search_by_pinyin_initials_without_duplicate_rows(
    visit: Any, seeded: dict[str, Any]  # noqa: F811
) -> None:
    v = _phone(visit)
    page = v.page
    search_for(page, "tjxq")
    rows = page.locator("#pc-results .pc-item")
    assert rows.first.locator(".pc-item-name").inner_text() == "太嘉小区"
    assert rows.first.get_attribute("data-site-id") == seeded["site_id"]
    assert ADDRESS in rows.first.inner_text()  # the address tells it apart
    # the address finds it too
    search_for(page, "坞城路92")
    assert [r.get_attribute("data-site-id") for r in rows.all()] == [seeded["site_id"]]
    # two positions called 八一小学: two rows, each told apart, no row twice
    search_for(page, "bayi")
    texts = [r.inner_text() for r in rows.all()]
    ids = [r.get_attribute("data-site-id") for r in rows.all()]
    assert len(ids) == 2 and len(set(ids)) == 2 and len(set(texts)) == 2
    assert all(t.startswith("八一小学") for t in texts)
    assert page.evaluate("practiceMap.visibleCount()") == 2
    for q in ("xq", "sx", "s"):
        search_for(page, q)
        ids = [r.get_attribute("data-site-id") for r in rows.all()]
        assert ids and len(ids) == len(set(ids)), q
    search_for(page, "sxdx")
    _screenshot(v, "map-search-360.png")
    assert v.errors == [] and v.external == []


# ------------------------------------------------------------------------------ 离我最近


@pytest.fixture(scope="module")
def far_start(seeded: dict[str, Any], district: geo.District) -> tuple[float, float]:
    """A start whose three nearest positions are some within 15 minutes and some beyond."""
    cells = district.cells.sort_values("cell_id")
    for row in cells.itertuples():
        fc = _get(seeded["base"] + "/nearest?" + urllib.parse.urlencode(
            {"lon": row.lon, "lat": row.lat, "limit": 3}))
        minutes = [f["properties"]["minutes"] for f in fc["features"]]
        if len(minutes) == 3 and minutes[0] <= 15 < minutes[-1]:
            return float(row.lon), float(row.lat)
    pytest.fail("no start with results on both sides of 15 minutes")


def _visible_in_panel(page: Any, selector: str) -> list[dict[str, Any]]:
    return list(page.evaluate("""(sel) => {
        const panel = document.querySelector('#pc-panel').getBoundingClientRect();
        return [...document.querySelectorAll(sel)].map(b => {
            const r = b.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return {id: b.dataset.siteId, top: r.top, bottom: r.bottom, panelBottom: panel.bottom,
                    onTop: !!hit && b.contains(hit), far: b.dataset.far === 'true',
                    badge: b.querySelector('.pc-badge-far')?.textContent || null,
                    minutes: Number(b.dataset.minutes)};
        });
    }""", selector))


def test_nearest_above_the_fold_and_beyond_15_minutes_flagged(
    visit: Any, seeded: dict[str, Any], far_start: tuple[float, float]  # noqa: F811
) -> None:
    v = _phone(visit)
    page = v.page
    page.evaluate("([lon, lat]) => practiceMap.nearest(lon, lat)", list(far_start))
    page.locator("#pc-nearest-list .pc-item").first.wait_for()
    page.wait_for_timeout(300)
    items = _visible_in_panel(page, "#pc-nearest-list .pc-item")
    assert len(items) == 3
    for it in items:  # each result wholly on screen, not scrolled away inside the panel
        assert it["top"] >= 0 and it["bottom"] <= min(H, it["panelBottom"]) + 0.5, it
        assert it["onTop"], it
        assert it["far"] == (it["minutes"] > 15), it
        assert it["badge"] == ("超过15分钟" if it["minutes"] > 15 else None), it
    assert any(it["far"] for it in items) and not all(it["far"] for it in items)
    # the map keeps room to show the routes
    assert page.locator(".pc-map").bounding_box()["height"] >= 0.4 * H
    _screenshot(v, "map-nearest-360.png")
    assert v.errors == [] and v.external == []


def test_the_route_drawn_is_the_result_chosen(
    visit: Any, seeded: dict[str, Any], far_start: tuple[float, float]  # noqa: F811
) -> None:
    v = _phone(visit)
    page = v.page
    lon, lat = far_start
    page.evaluate("([lon, lat]) => practiceMap.nearest(lon, lat)", [lon, lat])
    page.locator("#pc-nearest-list .pc-item").first.wait_for()
    api = _get(seeded["base"] + "/nearest?" + urllib.parse.urlencode(
        {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "limit": 3}))["features"]
    drawn = page.evaluate("practiceMap.drawnRoute()")
    assert drawn["site_id"] == api[0]["properties"]["site_id"]  # the first, until one is chosen
    buttons = page.locator("#pc-nearest-list .pc-item")
    for k in (1, 2, 0):
        sid = api[k]["properties"]["site_id"]
        buttons.nth(k).click()
        drawn = page.evaluate("practiceMap.drawnRoute()")
        assert drawn["site_id"] == sid, k
        assert drawn["coordinates"] == api[k]["geometry"]["coordinates"], k
        assert buttons.nth(k).get_attribute("aria-current") == "true"
        assert [buttons.nth(j).get_attribute("aria-current") for j in range(3) if j != k] == \
            [None, None]
        _wait_card(page, sid)  # and its card opens
        if k == 1:
            _screenshot(v, "map-route-chosen-360.png")
    assert v.errors == [] and v.external == []


# ------------------------------------------------------------------------------ clusters


def test_clusters_read_as_a_count_of_positions(visit: Any) -> None:  # noqa: F811
    v = _phone(visit)
    page = v.page
    page.evaluate("() => { practiceMap.map.setZoom(13, {animate: false}); }")
    _settle(page)
    clusters = page.evaluate("""() => [...document.querySelectorAll('.pc-cluster')].map(c =>
        [c.textContent.trim(), c.getAttribute('aria-label'), c.getAttribute('role'), c.title])""")
    assert clusters
    for n, label, role, title in clusters:
        assert label == f"{n} 个阵地" and title == label and role == "button"
    # what assistive technology computes as the name
    n = clusters[0][0]
    assert page.get_by_role("button", name=f"{n} 个阵地").count() >= 1
    assert v.errors == [] and v.external == []


# ------------------------------------------------------------------------------ palette

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB.
_CVD = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
}


def _linear(hex_colour: str) -> np.ndarray:
    c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(rgb_linear: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ np.clip(rgb_linear, 0, 1) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_grid_palette_reads_with_red_green_colour_blindness(visit: Any) -> None:  # noqa: F811
    v = _phone(visit)
    page = v.page
    bins = page.evaluate("practiceMap.cellBins()")
    assert len(bins) == 6
    colours = [b["color"] for b in bins]
    for name, matrix in {"normal": np.eye(3), **_CVD}.items():
        labs = [_lab(matrix @ _linear(c)) for c in colours]
        lightness = [float(lab[0]) for lab in labs]
        # lightness falls step by step (near = light, far = dark): readable even in grey
        assert all(a - b > 8 for a, b in itertools.pairwise(lightness)), \
            (name, lightness)
        gaps = [float(np.linalg.norm(a - b)) for a, b in itertools.pairwise(labs)]
        assert min(gaps) > 10, (name, gaps)
    # the legend shows these colours
    page.hover(".leaflet-control-layers")
    page.get_by_text(LAYER_NAMES["cells"]).click()
    page.evaluate("() => { document.querySelector('#pc-legend').open = true; }")
    legend = page.locator("#pc-cells-legend")
    legend.wait_for()
    shown = page.evaluate("""() => [...document.querySelectorAll('#pc-cells-legend .pc-swatch')]
        .map(s => getComputedStyle(s).backgroundColor)""")
    rgb = [f"rgb({int(c[1:3], 16)}, {int(c[3:5], 16)}, {int(c[5:7], 16)})" for c in colours]
    assert shown == rgb
    assert v.errors == [] and v.external == []


# ------------------------------------------------------------------------------ 长辈版

_TARGETS = measure_js(
    """el => {
        const r = el.getBoundingClientRect();
        const s = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
            && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth
            && !el.closest('[hidden]');
    }""",
    """
    const targets = [...document.querySelectorAll(
        'a[href], button, input, select, summary, textarea, [role=button], [tabindex="0"], ' +
        '.pc-level, .leaflet-marker-icon, .leaflet-control-layers label')]
        .filter(el => !el.closest('.leaflet-control-layers-list') || visible(el))
        .filter(visible).map(el => {
            const r = el.getBoundingClientRect();
            const where = el.id || el.className || ('in-' + el.parentElement.className);
            return {what: (el.tagName + '.' + where + ' '
                           + (el.type || '') + ' ' + (el.textContent || '').trim()).slice(0, 60),
                    w: r.width, h: r.height, box: el.type === 'checkbox'};
        });""",
    small_text_js("svg, script, style"),
    returns="targets, small")


def test_large_mode_every_target_and_checkbox_44px(
    visit: Any, seeded: dict[str, Any], far_start: tuple[float, float]  # noqa: F811
) -> None:
    v = _phone(visit, "/map?large=1")
    page = v.page
    assert page.evaluate("document.documentElement.classList.contains('pc-large')")
    sid = seeded["site_id"]
    page.evaluate("([lon, lat]) => practiceMap.nearest(lon, lat)", list(far_start))
    page.locator("#pc-nearest-list .pc-item").first.wait_for()
    search_for(page, "tjxq")
    page.evaluate("() => { document.querySelector('#pc-legend').open = true; }")
    page.evaluate("(id) => practiceMap.openCard(id)", sid)
    card = _wait_card(page, sid)
    card.locator(".pc-nav-btn").click()
    card.locator(".pc-nav-route").wait_for()
    _settle(page)
    checked: list[dict[str, Any]] = []
    for scroll in range(0, 4000, 150):  # the panel scrolls: measure every part of it
        page.evaluate("(y) => { document.querySelector('#pc-panel').scrollTop = y; }", scroll)
        measured = page.evaluate(_TARGETS)
        checked += measured["targets"]
        assert measured["small"] == [], measured["small"]
        if page.evaluate("(y) => document.querySelector('#pc-panel').scrollTop < y", scroll):
            break
    popup = page.locator(".leaflet-popup-content-wrapper .leaflet-popup-content")
    for y in range(0, 2000, 100):  # and the card, which scrolls in its popup
        page.evaluate("(y) => { const c = document.querySelector('.leaflet-popup-content');"
                      " c.scrollTop = y; }", y)
        measured = page.evaluate(_TARGETS)
        checked += measured["targets"]
        assert measured["small"] == [], measured["small"]
    assert popup.count() == 1
    page.evaluate("() => { document.querySelector('.leaflet-popup-content').scrollTop = 0; }")
    _screenshot(v, "map-large-card-360.png")
    page.evaluate("() => { practiceMap.map.closePopup(); }")
    # the layer control open: its checkboxes and rows
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers-list").wait_for()
    for y in range(0, 1200, 100):
        page.evaluate("(y) => { document.querySelector('.leaflet-control-layers').scrollTop = y; }",
                      y)
        measured = page.evaluate(_TARGETS)
        checked += measured["targets"]
        assert measured["small"] == [], measured["small"]
    whats = [t["what"] for t in checked]
    assert any(t["box"] and "leaflet-control-layers" in t["what"] for t in checked)
    assert any(t["box"] and "in-pc-level" in t["what"] for t in checked)  # legend checkboxes
    assert any(w.startswith("A.pc-tel") for w in whats)
    assert any("pc-nav-link" in w for w in whats)
    assert any("pc-cluster" in t["what"] or "pc-marker" in t["what"] for t in checked)
    tiny = sorted({(t["what"], round(t["w"]), round(t["h"])) for t in too_small(checked)})
    assert tiny == []
    _screenshot(v, "map-large-layers-360.png")
    assert v.errors == [] and v.external == []
