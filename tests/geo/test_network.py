"""Walk filter, graph building from the bundled real OSM data, and refusal of bad OSM files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

import data
import geo
from geo.district import check_district_name, import_osm
from geo.network import (
    MAX_IMPORT_SPAN_KM,
    graph_from_lines,
    graph_from_osm_xml,
    is_walkable,
    parse_other_tags,
    span_km,
)

# Hand-written from OSM tagging practice (osmnx's documented "walk" network, with the rules of
# docs/walk-filter.md), deliberately not reusing the regular expressions of geo.network.
NOT_FOR_WALKING = {
    "motorway", "motorway_link", "construction", "proposed", "planned", "abandoned",
    "platform", "raceway", "bus_guideway", "rest_area", "services", "razed", "no",
}


def walkable_by_hand(tags: dict[str, str]) -> bool:
    highway = tags.get("highway", "")
    foot = tags.get("foot")
    closed = tags.get("access") in ("no", "private") or tags.get("service") == "private"
    return (
        highway != ""
        and highway not in NOT_FOR_WALKING
        and (tags.get("area") != "yes" or highway in ("pedestrian", "footway"))
        and foot not in ("no", "private")
        and not (closed and foot not in ("yes", "designated", "permissive"))
        and all(tags.get(k) != "separate" for k in
                ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right"))
    )


# --------------------------------------------------------------------------- the walk filter


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "pedestrian"}, True),
        ({"highway": "residential"}, True),
        ({"highway": "living_street"}, True),
        ({"highway": "path"}, True),
        ({"highway": "footway", "foot": "yes"}, True),
        ({"highway": "footway", "foot": "designated"}, True),
        ({"highway": "footway", "access": "yes"}, True),
        ({"highway": "pedestrian", "area": "no"}, True),
        ({"highway": "footway", "foot": None, "access": float("nan")}, True),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "residential", "access": "private"}, False),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "pedestrian", "area": "yes"}, True),
        ({"highway": "footway", "area": "yes"}, True),
        ({"highway": "service", "area": "yes"}, False),
        ({"highway": "pedestrian", "area": "yes", "access": "private"}, False),
        ({"highway": "cycleway"}, True),
        ({"highway": "cycleway", "foot": "yes"}, True),
        ({"highway": "cycleway", "foot": "no"}, False),
        ({"highway": "cycleway", "access": "no"}, False),
        ({"highway": "cycleway", "access": "no", "foot": "yes"}, True),
        ({"highway": "footway", "access": "no"}, False),
        ({"highway": "footway", "access": "no", "foot": "designated"}, True),
        ({"highway": "residential", "access": "private", "foot": "permissive"}, True),
        ({"highway": "residential", "access": "no", "motor_vehicle": "yes"}, False),
        ({"highway": "residential", "access": "permissive"}, True),
        ({"highway": "residential", "access": "destination"}, True),
        ({"highway": "footway", "foot": "private"}, False),
        ({"highway": "service", "service": "private", "foot": "yes"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link"}, False),
        ({"highway": "construction"}, False),
        ({"highway": "primary", "sidewalk": "separate"}, False),
        ({"building": "yes"}, False),
        ({"highway": ""}, False),
        ({}, False),
    ],
)
def test_is_walkable(tags: dict[str, object], expected: bool) -> None:
    assert is_walkable(tags) is expected


def test_parse_other_tags_reads_hstore() -> None:
    text = '"lanes"=>"4","name:zh"=>"汾河","note"=>"a, b=>c","oneway"=>"yes"'
    assert parse_other_tags(text) == {
        "lanes": "4", "name:zh": "汾河", "note": "a, b=>c", "oneway": "yes",
    }


@pytest.mark.parametrize("empty", [None, "", float("nan")])
def test_parse_other_tags_empty(empty: object) -> None:
    assert parse_other_tags(empty) == {}


def test_parse_other_tags_unescapes_quotes() -> None:
    text = r'"name"=>"say \"hi\"","path"=>"a\\b"'
    assert parse_other_tags(text) == {"name": 'say "hi"', "path": "a\\b"}


# ------------------------------------------------------------- the real Taiyuan lines layer


@pytest.fixture(scope="module")
def taiyuan_lines() -> gpd.GeoDataFrame:
    return data.read_taiyuan_lines()


@pytest.fixture(scope="module")
def taiyuan_walkable(taiyuan_lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    tags = [
        {**parse_other_tags(other), "highway": hw if isinstance(hw, str) else ""}
        for hw, other in zip(taiyuan_lines["highway"], taiyuan_lines["other_tags"], strict=True)
    ]
    keep = np.array([walkable_by_hand(t) for t in tags], dtype=bool)
    return taiyuan_lines[keep]


@pytest.fixture(scope="module")
def taiyuan_graph(taiyuan_lines: gpd.GeoDataFrame) -> nx.MultiDiGraph:
    from geo.network import walkable_lines

    return graph_from_lines(walkable_lines(taiyuan_lines))


def test_taiyuan_filter_keeps_footways_and_cycleways_unless_foot_no(
    taiyuan_lines: gpd.GeoDataFrame,
    taiyuan_walkable: gpd.GeoDataFrame,
    taiyuan_graph: nx.MultiDiGraph,
) -> None:
    highways = Counter(d["highway"] for _, _, d in taiyuan_graph.edges(data=True))
    assert highways["footway"] > 0
    assert highways["steps"] > 0
    assert highways["pedestrian"] > 0
    assert not set(highways) & NOT_FOR_WALKING
    # The ways in the graph are exactly the ways the hand-written filter keeps.
    in_graph = {d["osmid"] for _, _, d in taiyuan_graph.edges(data=True)}
    assert in_graph == set(taiyuan_walkable["osm_id"].astype("int64"))
    assert highways["cycleway"] > 0
    tags = taiyuan_lines["other_tags"].map(parse_other_tags)
    is_cycleway = (taiyuan_lines["highway"] == "cycleway").to_numpy()
    no_foot = np.array([t.get("foot") == "no" for t in tags], dtype=bool)
    banned = set(taiyuan_lines.loc[is_cycleway & no_foot, "osm_id"].astype("int64"))
    assert banned, "the extract maps cycleways with foot=no: the filter must have some to drop"
    assert not banned & in_graph


def test_taiyuan_graph_joins_ways_at_shared_vertices(
    taiyuan_walkable: gpd.GeoDataFrame, taiyuan_graph: nx.MultiDiGraph
) -> None:
    coords = shapely.get_coordinates(taiyuan_walkable.geometry.to_numpy())
    assert taiyuan_graph.number_of_nodes() == len({(x, y) for x, y in coords})
    largest = max(nx.weakly_connected_components(taiyuan_graph), key=len)
    assert len(largest) > 15_000  # FIELD-NOTES: 19,162 of 20,303

    # What joining ways only at their end points would give.
    ends = nx.Graph()
    for geom in taiyuan_walkable.geometry:
        xy = shapely.get_coordinates(geom)
        ends.add_edge(tuple(xy[0]), tuple(xy[-1]))
    ends_largest = max(nx.connected_components(ends), key=len)
    assert len(largest) / taiyuan_graph.number_of_nodes() > 0.9
    assert len(ends_largest) / ends.number_of_nodes() < 0.3


def test_taiyuan_graph_lengths_match_projected_geometry(
    taiyuan_walkable: gpd.GeoDataFrame, taiyuan_graph: nx.MultiDiGraph
) -> None:
    total_m = sum(d["length"] for _, _, d in taiyuan_graph.edges(data=True)) / 2  # both directions
    utm = taiyuan_walkable.geometry.to_crs(taiyuan_walkable.estimate_utm_crs())
    assert total_m == pytest.approx(utm.length.sum(), rel=5e-3)
    # Every segment is walkable both ways with the same length.
    for u, v, d in list(taiyuan_graph.edges(data=True))[:500]:
        assert any(
            back["length"] == d["length"] for back in taiyuan_graph.get_edge_data(v, u).values()
        )


# ------------------------------------------------------------------- the real Haidian OSM XML


def _xml_ways(path: Path) -> dict[int, dict[str, str]]:
    ways = {}
    for way in ET.parse(path).getroot().iter("way"):
        ways[int(way.get("id"))] = {t.get("k"): t.get("v") for t in way.iter("tag")}
    return ways


@pytest.mark.slow
def test_graph_from_osm_xml_real_file_walkable_only(osm_xml: Path) -> None:
    G = graph_from_osm_xml(osm_xml)
    ways = _xml_ways(osm_xml)
    in_graph = {d["osmid"] for _, _, d in G.edges(data=True)}
    expected = {i for i, tags in ways.items() if walkable_by_hand(tags)}
    assert len(expected) > 100
    assert in_graph == expected
    buildings = {i for i, tags in ways.items() if "building" in tags}
    assert buildings and not buildings & in_graph
    assert all(d["length"] > 0 for _, _, d in G.edges(data=True))
    assert Counter(d["highway"] for _, _, d in G.edges(data=True))["footway"] > 0
    # Two-way walking: every edge has its reverse.
    assert all(G.has_edge(v, u) for u, v in G.edges())


# ------------------------------------------------------------------------------ bad input

BUILDING_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="practice-circle tests">
 <node id="1" lat="40.0000" lon="116.3500"/>
 <node id="2" lat="40.0000" lon="116.3510"/>
 <node id="3" lat="40.0010" lon="116.3510"/>
 <node id="4" lat="40.0010" lon="116.3500"/>
 <way id="10">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="building" v="yes"/>
 </way>
 <way id="11">
  <nd ref="1"/><nd ref="3"/>
  <tag k="highway" v="cycleway"/>
  <tag k="foot" v="no"/>
 </way>
</osm>
"""


def _bad_file(kind: str, folder: Path, osm_xml: Path) -> Path:
    path = folder / f"{kind}.osm"
    if kind == "text":
        path.write_text("lon,lat\n112.5,37.8\nthis is not XML at all\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        raw = osm_xml.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "building_only":
        path.write_text(BUILDING_ONLY)
    elif kind == "html":
        path.write_text("<!DOCTYPE html>\n<html><head><title>x</title></head><body></body></html>")
    elif kind == "missing":
        pass
    return path


BAD = [
    ("text", "not XML"),
    ("empty", "empty"),
    ("truncated", "truncated"),
    ("building_only", "no walkable ways"),
    ("html", r"not OSM XML \(root element <html>"),
    ("missing", "no such file"),
]


@pytest.mark.parametrize(("kind", "message"), BAD)
def test_graph_from_osm_xml_refuses_bad_files(
    kind: str, message: str, tmp_path: Path, osm_xml: Path
) -> None:
    path = _bad_file(kind, tmp_path, osm_xml)
    with pytest.raises(geo.OSMDataError, match=message):
        graph_from_osm_xml(path)


@pytest.mark.parametrize(("kind", "message"), BAD)
def test_import_osm_refuses_bad_files_and_writes_nothing(
    kind: str, message: str, tmp_path: Path, osm_xml: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    path = _bad_file(kind, tmp_path, osm_xml)
    with pytest.raises(geo.OSMDataError, match=message):
        import_osm(path, "坏数据", cache_dir=cache)
    assert not (cache / "districts" / "坏数据").exists()
    leftovers = list((cache / "districts").iterdir()) if (cache / "districts").exists() else []
    assert leftovers == []
    assert geo.cached_districts(cache) == []


BAD_NAMES = {
    "": "it is empty",
    "a/b": "'/' is not allowed",
    ".hidden": "it starts with '.'",
    "..": "it starts with '.'",
    "a\\b": "'\\\\' is not allowed",
    "tab\there": "'\\t' is not allowed",
    "line\nbreak": "'\\n' is not allowed",
    "nul\x00": "'\\x00' is not allowed",
    "<img src=x onerror=alert(1)>": "it starts with '<'",
    "学清<b>路</b>": "'<' is not allowed",
    "[/x]": "it starts with '['",
    "a.b": "'.' is not allowed",
    "rtl\u202eexe": "'\\u202e' is not allowed",
    "-rf": "it starts with '-'",
    " 学清": "it starts with ' '",
    "学清 ": "it ends with a space",
    "长" * 65: "it has 65 characters",
    "长" * 300: "it has 300 characters",
    "%2e%2e": "it starts with '%'",
    "a'b": "\"'\" is not allowed",
}


@pytest.mark.parametrize("name", sorted(BAD_NAMES))
def test_import_osm_refuses_bad_names(name: str, tmp_path: Path, osm_xml: Path) -> None:
    with pytest.raises(geo.OSMDataError, match="invalid district name") as e:
        import_osm(osm_xml, name, cache_dir=tmp_path)
    assert BAD_NAMES[name] in str(e.value)
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
    assert not (tmp_path / "districts").exists()


@pytest.mark.parametrize(
    "name",
    ["海淀-学清", "学清路", "Xueqing Road", "北京·海淀 (2026)", "海淀（北部）", "x" * 64, "Ñandú_2",
     "東京", "서울", "Zürich", "7号院", "मुंबई"],
)
def test_district_names_that_are_fine(name: str) -> None:
    assert check_district_name(name) == name


@pytest.mark.slow
def test_import_osm_real_file_round_trips(tmp_path: Path, osm_xml: Path) -> None:
    imported = import_osm(osm_xml, "学清路", cache_dir=tmp_path)
    assert geo.cached_districts(tmp_path) == ["学清路"]
    assert sorted(p.name for p in (tmp_path / "districts").iterdir()) == ["学清路"]
    loaded = geo.load_district("学清路", tmp_path)
    assert len(loaded.nodes) == len(imported.nodes) > 100
    assert loaded.meta == imported.meta
    # Importing again replaces the district atomically and leaves no temporary folders.
    import_osm(osm_xml, "学清路", cache_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "districts").iterdir()) == ["学清路"]


def test_span_limit_is_a_district_unless_an_outline_bounds_it(
    tmp_path: Path, osm_xml: Path
) -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(osm_xml).getroot()
    walk_ref = next(nd.get("ref") for w in root.iter("way")
                    if any(t.get("k") == "highway" and t.get("v") == "residential"
                           for t in w.iter("tag")) for nd in w.iter("nd"))
    node = next(n for n in root.iter("node") if n.get("id") == walk_ref)
    node.set("lon", f"{float(node.get('lon', '0')) + 1.6:.7f}")  # ~135 km east
    far = tmp_path / "far.osm"
    ET.ElementTree(root).write(far, encoding="utf-8", xml_declaration=True)
    with pytest.raises(geo.OSMDataError, match=f"{MAX_IMPORT_SPAN_KM:g} km a side"):
        graph_from_osm_xml(far)
    wide, _ = span_km(116.35, 40.0, 117.95, 40.0)
    assert 130 < wide < 140
    G = graph_from_osm_xml(far, max_span_km=wide + 5)
    assert int(walk_ref or 0) in G.nodes
