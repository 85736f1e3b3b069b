"""Build the practice map page: a folium map, Chinese-first, offline, phone-friendly.

The page holds no district data except its name and outline bounds: the browser fetches the
positions, basemap and planner layers from the API with relative URLs, and
``maps/static/practice-map.js`` draws them (text always through ``textContent``).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

import folium
import shapely
from branca.element import Element, Figure
from folium.template import Template

from geo import CATEGORIES, DEFAULT_WALK_M_PER_MIN, District
from geo.places import PLACE_KINDS
from geo.registry import LEVELS, Level
from maps import assets
from maps.basemap import district_bbox

OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL 1.0)"
DEMO_NOTE = "阵地名录为示例数据：由 OSM 真实地点按固定规则生成，非官方名录"
ONLINE_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


#: Marker style per level: short name, glyph, shape and colour (white text on it ≥ 4.5:1).
LEVEL_STYLE: dict[str, dict[str, str]] = {
    Level.CENTER: {"short": Level.CENTER.short, "glyph": "中", "shape": "star",
                   "color": "#B3261E"},
    Level.TOWNSHIP: {"short": Level.TOWNSHIP.short, "glyph": "所", "shape": "square",
                     "color": "#1F5FAD"},
    Level.COMMUNITY: {"short": Level.COMMUNITY.short, "glyph": "站", "shape": "diamond",
                      "color": "#1B6E3A"},
    Level.SITE: {"short": Level.SITE.short, "glyph": "点", "shape": "circle", "color": "#6B3FA0"},
}

#: Overlay names in the layer control (fixed Chinese strings; Leaflet inserts them as HTML).
LAYER_NAMES: dict[str, str] = {
    "sites": "实践阵地（中心/所/站/点）",
    "route": "离我最近 · 步行路线",
    "cells": "规划 · 步行时间网格",
    "serviceAreas": "规划 · 15分钟服务范围",
    "gaps": "规划 · 服务缺口与居民",
    "recommendations": "规划 · 推荐新址",
    "streets": "底图 · 街道",
    "water": "底图 · 水系",
    "green": "底图 · 绿地公园",
    "buildings": "底图 · 建筑",
}
_HIDDEN = {"cells", "serviceAreas", "gaps", "recommendations"}
ONLINE_LAYER_NAME = "在线 OSM 瓦片（需联网）"


class ZhFigure(Figure):
    """A page with ``lang="zh-CN"``, a charset and an escaped title."""

    _template = Template(
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        "{% if this.title %}<title>{{ this.title }}</title>{% endif %}\n"
        "{{ this.header.render(**kwargs) }}\n"
        "</head>\n"
        "<body>\n"
        "{{ this.html.render(**kwargs) }}\n"
        "<script>\n"
        "{{ this.script.render(**kwargs) }}\n"
        "</script>\n"
        "</body>\n"
        "</html>\n"
    )

    def __init__(self, title: str) -> None:
        super().__init__(title=html.escape(title))


class PracticeMap(folium.Map):
    """A folium map that lets people zoom the page (no ``user-scalable=no``), controls in zh."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>#{{ this.get_name() }} { position: relative; width: 100%; height: 100%; }</style>
        {% endmacro %}

        {% macro html(this, kwargs) %}
        <main class="pc-main" aria-label="地图">
        <div class="folium-map pc-map" id={{ this.get_name()|tojson }}></div>
        </main>
        {% endmacro %}

        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.map({{ this.get_name()|tojson }}, {
            center: {{ this.location|tojson }},
            crs: L.CRS.{{ this.crs }},
            ...{{ this.options|tojavascript }}
        });
        {%- if this.control_scale %}
        L.control.scale({imperial: false}).addTo({{ this.get_name() }});
        {%- endif %}
        {%- if this.zoom_control_position %}
        L.control.zoom({position: {{ this.zoom_control|tojson }}, zoomInTitle: "放大",
                        zoomOutTitle: "缩小"}).addTo({{ this.get_name() }});
        {%- endif %}
        {% endmacro %}
        """
    )


class _App(folium.MacroElement):
    """Start ``practice-map.js`` on the map with its layers, layer control and configuration."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        PracticeMap.init({{ this._parent.get_name() }}, {
            {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
            {%- endfor %}
        }, {{ this.control.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self, layers: dict[str, folium.map.Layer], control: folium.LayerControl,
        config: dict[str, Any],
    ) -> None:
        super().__init__()
        self._name = "PracticeMapApp"
        self.layers, self.control, self.config = layers, control, config


def _url(path: str, district: str, **params: str) -> str:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"district": district, **params}.items())
    return f"{path}?{query}"


def page_config(district: District) -> dict[str, Any]:
    """Return what ``practice-map.js`` needs: URLs, levels, categories, labels."""
    name = district.name
    return {
        "district": name,
        "urls": {
            "sites": _url("map/sites", name),
            "basemap": _url("map/basemap", name),
            "nearest": _url("nearest", name),
            "cells": _url("coverage/cells", name),
            "serviceAreas": _url("service-areas", name, minutes="15"),
            "gaps": _url("gaps", name),
            "recommendations": _url("recommendations", name),
            "search": _url("search", name),
            # {site_id} is filled in by practice-map.js (URL-encoded)
            "card": _url("positions/{site_id}/card", name),
            "route": _url("positions/{site_id}/route", name),
        },
        "levels": [{"code": code, "zh": zh, **LEVEL_STYLE[code]} for code, zh in LEVELS.items()],
        "categories": [{"code": c.code, "name": c.name} for c in CATEGORIES],
        "placeKinds": {kind: zh for kind, (zh, _) in PLACE_KINDS.items()},
        "walkMPerMin": DEFAULT_WALK_M_PER_MIN,
        "minutes": 15,
        "attribution": OSM_ATTRIBUTION,
        "demo": bool(district.meta.get("demo_registry", True)),
        "demoNote": DEMO_NOTE,
        "layerNames": LAYER_NAMES,
    }


def prefetch_script(config: dict[str, Any]) -> str:
    """Return an inline script that starts fetching the positions and basemap at once.

    It runs before Leaflet downloads, so the data arrive while the scripts load;
    ``practice-map.js`` picks up the pending responses.
    """
    urls = {k: config["urls"][k] for k in ("sites", "basemap")}
    text = json.dumps(urls).replace("<", "\\u003c")
    return ("<script>window.PC_PREFETCH=(function(u){var o={};for(var k in u){"
            "o[k]=fetch(u[k],{headers:{Accept:'application/json'}});}return o;})("
            f"{text});</script>")


def panel_html(district: District) -> str:
    """Return the side panel: title, search, filters, 定位我, 长辈版 and the result lists."""
    name = html.escape(district.name)
    options = "".join(
        f'<option value="{html.escape(c.code)}">{html.escape(c.name)}</option>' for c in CATEGORIES
    )
    demo = (f'<span class="pc-demo" title="{html.escape(DEMO_NOTE)}">示例数据</span>'
            if district.meta.get("demo_registry", True) else "")
    return f"""
<aside id="pc-panel" class="pc-panel" aria-label="查找新时代文明实践阵地">
  <header class="pc-head">
    <h1 class="pc-title">{name} · 新时代文明实践阵地</h1>{demo}
    <button id="pc-collapse" class="pc-btn pc-btn-quiet" type="button" aria-expanded="true"
      aria-controls="pc-body">收起</button>
  </header>
  <div id="pc-body" class="pc-body">
    <div class="pc-tools">
      <label class="pc-sr" for="pc-search">按名称、地址或拼音首字母搜索阵地</label>
      <input id="pc-search" class="pc-input" type="search" maxlength="40"
        placeholder="搜索阵地：名称、地址或拼音首字母" autocomplete="off" enterkeyhint="search"
        aria-controls="pc-results">
      <label class="pc-sr" for="pc-category">按服务类别筛选</label>
      <select id="pc-category" class="pc-input">
        <option value="">全部服务类别</option>{options}</select>
      <div class="pc-buttons">
        <button id="pc-locate" class="pc-btn pc-btn-main" type="button">定位我</button>
        <button id="pc-large" class="pc-btn" type="button" aria-pressed="false">长辈版</button>
      </div>
    </div>
    <p id="pc-count" class="pc-count" aria-live="polite">正在加载阵地…</p>
    <p id="pc-message" class="pc-message" role="status" aria-live="polite"></p>
    <ul id="pc-layer-status" class="pc-layer-status" aria-live="polite"></ul>
    <section id="pc-results-box" class="pc-box" hidden data-state="done" data-query="">
      <h2 class="pc-h2">搜索结果</h2>
      <ul id="pc-results" class="pc-list"></ul>
    </section>
    <section id="pc-nearest" class="pc-box" hidden>
      <h2 class="pc-h2">离我最近</h2>
      <p id="pc-nearest-from" class="pc-note"></p>
      <ol id="pc-nearest-list" class="pc-list"></ol>
    </section>
    <p class="pc-note">点击地图任意位置，或按“定位我”，查看离您最近的阵地、步行路线和步行时间。</p>
    <details id="pc-legend" class="pc-legend" open>
      <summary>图例 · 按层级显示</summary>
      <ul id="pc-levels" class="pc-levels"></ul>
      <div id="pc-cells-legend" class="pc-cells-legend" hidden></div>
      <ul id="pc-plan-keys" class="pc-bins"></ul>
    </details>
    <p class="pc-foot">地图数据 {html.escape(OSM_ATTRIBUTION)}；{html.escape(DEMO_NOTE)}。
      底图由本区 OSM 数据绘制，无需联网。</p>
  </div>
</aside>
"""


def build_map(district: District) -> folium.Map:
    """Build the folium map of a district with every layer, the layer control and the app."""
    pos = district.positions
    bbox = district_bbox(district)
    if len(pos):
        west, south, east, north = shapely.total_bounds(pos.geometry.to_numpy())
    else:
        west, south, east, north = bbox
    m = PracticeMap(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=None,
        zoom_start=14,
        max_bounds=True,
        min_lon=bbox[0] - 0.05, min_lat=bbox[1] - 0.05,
        max_lon=bbox[2] + 0.05, max_lat=bbox[3] + 0.05,
        control_scale=True,
        prefer_canvas=True,
        zoom_control="bottomright",
    )
    m.options.update(min_zoom=11, max_zoom=19)  # folium passes its own only to a tile layer
    m.default_js = [(n, assets.asset_url(p, f)) for n, p, f in assets.JS
                    if n != "jquery"]  # nothing on this page uses jQuery
    m.default_css = [(n, assets.asset_url(p, f)) for n, p, f in assets.CSS]
    config = page_config(district)
    title = f"{district.name} · 新时代文明实践阵地地图"
    fig = ZhFigure(title)
    fig.add_child(m)
    fig.header.add_child(Element(
        f'<meta name="description" content="{html.escape(title)}（示例数据）">'
        '<meta name="theme-color" content="#0B4F9C">'
        '<link rel="icon" href="data:,">'), name="pc_meta")
    fig.html.add_child(Element(panel_html(district)), name="pc_panel")
    fig.header.add_child(Element(prefetch_script(config)), name="pc_prefetch")

    layers: dict[str, folium.map.Layer] = {
        key: folium.FeatureGroup(name=label, show=key not in _HIDDEN)
        for key, label in LAYER_NAMES.items()
    }
    layers["online"] = folium.TileLayer(
        ONLINE_TILES, name=ONLINE_LAYER_NAME, attr=OSM_ATTRIBUTION, overlay=True, show=False,
        max_zoom=19, max_native_zoom=19,
    )
    for layer in layers.values():
        m.add_child(layer)
    control = folium.LayerControl(position="topright", collapsed=True)
    m.add_child(control)
    if len(pos):
        m.fit_bounds([[south, west], [north, east]], padding=(12, 12))
    _App(layers, control, config).add_to(m)
    return m


def build_page(district: District) -> str:
    """Render the practice map page of a district as one HTML document."""
    root = build_map(district).get_root()
    assert isinstance(root, Figure)
    return root.render()
