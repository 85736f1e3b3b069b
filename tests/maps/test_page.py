"""The map page as HTML: zh-CN, local assets only, escaped names; and its basemap layers."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

import pytest
import shapely

import geo
from maps import assets
from maps.basemap import district_basemap, street_class, streets_layer
from maps.page import LAYER_NAMES, build_page
from tests.maps.helpers import skip_or_fail

EVIL = '<img src=x onerror=alert(1)></script><script>alert(2)</script>'


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in {"src", "href"} and value is not None:
                self.urls.append((tag, name, value))


def _parse(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def page(district: geo.District) -> str:
    return build_page(district)


def test_page_is_chinese_first(page: str) -> None:
    assert re.search(r'<html lang="zh-CN">', page)
    assert '<meta charset="utf-8">' in page
    assert "<title>小店区 · 新时代文明实践阵地地图</title>" in page
    for text in ("定位我", "长辈版", "离我最近", "示例数据", "搜索阵地：名称、地址或拼音首字母",
                 "全部服务类别", "理论政策宣讲", "图例"):
        assert text in page, text
    assert "© OpenStreetMap contributors" in page
    # people may zoom the page (no user-scalable=no)
    assert "user-scalable=no" not in page and 'name="viewport"' in page


def test_no_external_urls_anywhere(page: str) -> None:
    urls = _parse(page).urls
    assert urls, "the page links its scripts and styles"
    external = [u for u in urls if re.match(r"^(https?:)?//", u[2], re.I)]
    assert external == []
    # nor inside script strings or styles
    assert not re.search(r"""(src|href)\s*=\s*\\?["']?(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    # the only absolute URL is the optional online tile layer, off by default
    absolute = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert absolute == {"https://tile.openstreetmap.org/{z}/{x}/{y}.png"}


def test_assets_are_local_and_on_disk(page: str) -> None:
    urls = [u.split("?")[0] for _, _, u in _parse(page).urls
            if u.startswith(assets.ASSETS_PATH + "/")]
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts == ["assets/leaflet/leaflet.js",
                       "assets/leaflet.markercluster/leaflet.markercluster.js",
                       "assets/app/practice-map.js"]
    assert (assets.STATIC_DIR / "practice-map.js").is_file()
    assert (assets.STATIC_DIR / "practice-map.css").is_file()
    missing = assets.missing_assets()
    if missing and not assets.node_modules_dir().is_dir():
        skip_or_fail("node_modules absent: run `npm ci`")
    assert missing == []


def test_layers_and_online_tiles_off_by_default(page: str) -> None:
    for name in (*LAYER_NAMES.values(), "在线 OSM 瓦片（需联网）"):
        assert json.dumps(name) in page, name  # the layer control's keys (JSON, ASCII-escaped)
    # a Leaflet tile layer is created but never added to the map at start
    tile_var = re.search(r"var (tile_layer_\w+) = L\.tileLayer", page)
    assert tile_var
    assert f"{tile_var.group(1)}.addTo(" not in page


def test_page_fetches_with_relative_urls(page: str) -> None:
    config = re.search(r"PracticeMap\.init\(.*?\}, (layer_control_\w+), (\{.*\})\);", page,
                       re.S)
    assert config
    cfg = json.loads(config.group(2))
    for url in cfg["urls"].values():
        assert not url.startswith(("/", "http")) and "district=" in url
    assert cfg["urls"]["nearest"].startswith("nearest?")
    assert [lv["code"] for lv in cfg["levels"]] == ["center", "township", "community", "site"]
    shapes = {lv["shape"] for lv in cfg["levels"]}
    colours = {lv["color"] for lv in cfg["levels"]}
    assert len(shapes) == 4 and len(colours) == 4


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_marker_glyphs_contrast(page: str) -> None:
    cfg = json.loads(re.search(r"PracticeMap\.init\(.*?\}, layer_control_\w+, (\{.*\})\);",
                               page, re.S).group(1))
    for lv in cfg["levels"]:
        ratio = (1.05) / (_luminance(lv["color"]) + 0.05)  # white glyph on the shape
        assert ratio >= 4.5, (lv["code"], ratio)


def test_names_are_escaped(district: geo.District) -> None:
    pos = district.positions.copy()
    pos.loc[pos.index[0], "name"] = EVIL
    edges = district.edges.copy()
    edges.loc[edges.index[0], "name"] = EVIL
    evil = dataclasses.replace(district, name=f"测试{EVIL}区", positions=pos, edges=edges,
                               _network=None)
    page = build_page(evil)
    assert "<img src=x" not in page
    assert "alert(2)</script>" not in page
    assert page.count("<script>") == 2  # the data prefetch and folium's own block
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the title and panel show it as text
    tags = _parse(page).tags
    assert not [t for t, a in tags if t == "img"]
    # inside the inline script, the name sits in JSON with < escaped
    script = page[page.index("<script>\n"):]
    assert "\\u003cimg src=x" in script


def test_street_classes() -> None:
    assert street_class("primary") == "major"
    assert street_class("footway;steps") == "path"
    assert street_class("residential") == "minor"
    assert street_class(None) == "minor"


def test_basemap_layers_from_the_districts_own_osm_data(district: geo.District) -> None:
    base = district_basemap(district)
    layers = base.layers()
    assert list(layers) == ["green", "water", "buildings", "streets"]
    for name, fc in layers.items():
        assert fc["type"] == "FeatureCollection" and fc["features"], name
    streets = layers["streets"]["features"]
    assert {f["properties"]["k"] for f in streets} == {"major", "minor", "path"}
    assert any(f["properties"].get("name") == "长风西街" for f in streets)
    west, south, east, north = shapely.total_bounds(district.edges.geometry.to_numpy())
    for fc in layers.values():
        for f in fc["features"][:50]:
            geom = shapely.geometry.shape(f["geometry"])
            b = geom.bounds
            assert west - 0.01 <= b[0] and b[2] <= east + 0.01, f
            assert south - 0.01 <= b[1] and b[3] <= north + 0.01, f
    # simplified and rounded: no more than 5 decimals
    text = json.dumps(layers["streets"])
    assert not re.search(r"\d+\.\d{6,}", text)
    network_km = sum(shapely.geometry.shape(f["geometry"]).length for f in streets)
    assert network_km > 0


def test_streets_layer_keeps_every_edge(district: geo.District) -> None:
    fc = streets_layer(district.edges)
    parts = sum(len(shapely.geometry.shape(f["geometry"]).geoms) for f in fc["features"])
    assert parts == len(district.edges)
