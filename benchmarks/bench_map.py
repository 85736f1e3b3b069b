"""Time to first render and page weight of the practice map vs a plain folium page.

The baseline is a plain folium page of the same positions (one ``folium.Marker`` each, with an
escaped popup and tooltip) using the same local Leaflet and jQuery, and no basemap. The practice
map counts as rendered when its positions *and* its offline basemap are drawn; the baseline
when all its markers are in the page. Each run uses a fresh browser context (cold cache).

Run: ``PRACTICE_CIRCLE_CACHE=/tmp/pc-cache .venv/bin/python benchmarks/bench_map.py [--runs 7]``.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import html
import json
import socket
import statistics
import threading
import time
from typing import Any

import folium
import uvicorn
from fastapi import Response

from api.main import create_app
from api.settings import get_settings
from geo import get_district
from maps import assets

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]
GOAL_RATIO = 2.0

_STAMP = """(cond) => {
    if (!window.__rendered && eval(cond)) { window.__rendered = performance.now(); }
    return !!window.__rendered;
}"""
_WEIGHT = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const sum = (k) => res.reduce((s, r) => s + (r[k] || 0), 0);
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return {html: nav.encodedBodySize, html_decoded: nav.decodedBodySize,
            transfer: nav.transferSize + sum('transferSize'),
            decoded: nav.decodedBodySize + sum('decodedBodySize'),
            requests: 1 + res.length, fcp: paint ? paint.startTime : null};
}"""


def plain_page(district_name: str) -> str:
    """Render the baseline: a plain folium page with one marker per position, local assets."""
    district = get_district(district_name, cache_dir=get_settings().cache)
    pos = district.positions
    m = folium.Map(location=[pos.geometry.y.mean(), pos.geometry.x.mean()], zoom_start=14,
                   tiles=None)
    m.default_js = [(n, assets.asset_url(p, f)) for n, p, f in assets.BASE_JS]
    m.default_css = [(n, assets.asset_url(p, f)) for n, p, f in assets.BASE_CSS]
    for row in pos.itertuples():
        name = html.escape(str(row.name))
        folium.Marker([row.geometry.y, row.geometry.x], tooltip=name,
                      popup=folium.Popup(f"{name}<br>{html.escape(str(row.level_zh))}")).add_to(m)
    return m.get_root().render()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve() -> tuple[str, uvicorn.Server, int]:
    """Start the app (plus ``/bench-plain``) in a thread; return its URL and position count."""
    settings = get_settings()
    n = len(get_district(settings.district, cache_dir=settings.cache).positions)
    page = plain_page(settings.district)
    app = create_app()

    @app.get("/bench-plain", include_in_schema=False)
    def plain() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, n


def measure(browser: Any, url: str, cond: str, width: int) -> dict[str, Any]:
    """Load a page in a fresh context; time until ``cond`` holds; weigh what it loaded."""
    ctx = browser.new_context(viewport={"width": width, "height": 800})
    page = ctx.new_page()
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:"))
            else external.append(r.url))
    page.goto(url, wait_until="commit")
    page.wait_for_function(_STAMP, arg=cond, polling="raf", timeout=30000)
    page.wait_for_load_state("load")
    out: dict[str, Any] = {"ms": page.evaluate("window.__rendered"), **page.evaluate(_WEIGHT)}
    out["external"] = external
    ctx.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    if assets.missing_assets():
        raise SystemExit("map assets missing: run `npm ci` at the repository root")

    from playwright.sync_api import sync_playwright

    base, server, n = serve()
    pages = {
        "plain": (base + "/bench-plain",
                  f"document.querySelectorAll('.leaflet-marker-icon').length >= {n}"),
        "map": (base + "/map",
                "window.practiceMap && window.practiceMap.ready === true && "
                "document.querySelectorAll('.leaflet-marker-icon').length > 0"),
    }
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for url, cond in pages.values():  # warm the server's page and data caches
            measure(browser, url, cond, args.width)
        for _ in range(args.runs):
            for key, (url, cond) in pages.items():
                results[key].append(measure(browser, url, cond, args.width))
        browser.close()
    server.should_exit = True

    def med(key: str, field: str) -> float:
        values = [r[field] for r in results[key] if r[field] is not None]
        return float(statistics.median(values)) if values else float("nan")

    print(f"practice map vs plain folium page, {n} positions, {args.runs} cold runs, "
          f"{args.width} px, chromium headless")
    print(f"{'page':<7}{'render ms':>11}{'FCP ms':>9}{'HTML kB':>9}{'transfer kB':>13}"
          f"{'decoded kB':>12}{'requests':>10}")
    for key in pages:
        print(f"{key:<7}{med(key, 'ms'):>11.0f}{med(key, 'fcp'):>9.0f}"
              f"{med(key, 'html') / 1024:>9.1f}{med(key, 'transfer') / 1024:>13.1f}"
              f"{med(key, 'decoded') / 1024:>12.1f}{med(key, 'requests'):>10.0f}")
    ratio = med("map", "ms") / med("plain", "ms")
    weight = med("map", "transfer") / med("plain", "transfer")
    external = sorted({u for rs in results.values() for r in rs for u in r["external"]})
    print(f"render ratio {ratio:.2f} (goal < {GOAL_RATIO}); transfer ratio {weight:.2f} "
          "(the map also draws its offline basemap, clusters, legend and planner layers)")
    print(json.dumps({
        "positions": n,
        "runs": args.runs,
        "width": args.width,
        "plain_render_ms": round(med("plain", "ms"), 1),
        "map_render_ms": round(med("map", "ms"), 1),
        "render_ratio": round(ratio, 3),
        "plain_transfer_kb": round(med("plain", "transfer") / 1024, 1),
        "map_transfer_kb": round(med("map", "transfer") / 1024, 1),
        "transfer_ratio": round(weight, 3),
        "plain_html_kb": round(med("plain", "html") / 1024, 1),
        "map_html_kb": round(med("map", "html") / 1024, 1),
        "goal_ratio": GOAL_RATIO,
        "goal_met": bool(ratio < GOAL_RATIO),
        "external_requests": external,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
