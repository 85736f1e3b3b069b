"""The walk filter's rules (docs/walk-filter.md), each on real ways of the bundled extracts.

Expectations come from the files themselves (tags read here, lengths measured with pyproj and
shapely); the only constants are the OSM ids chosen to exercise each rule.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Geod

import data
from geo.network import (
    graph_from_lines,
    graph_from_osm_xml,
    is_pedestrian_area,
    is_walkable,
    parse_other_tags,
    walkable_areas,
    walkable_lines,
)

# The shared data beside the repository (../shared/data/PROVENANCE.md).
LONGGANG_OSM = (Path(data.__file__).resolve().parents[2]
                / "shared/data/osm/shenzhen_longgang/longgang_2019.osm")
GEOD = Geod(ellps="WGS84")

# Taiyuan lines layer (GDAL): way id -> whether the walk filter must keep it.
TAIYUAN_RULES = {
    749884355: True,   # highway=cycleway, no foot tag: a path people walk on
    749882388: True,   # highway=cycleway, foot=yes
    935855602: False,  # highway=cycleway, foot=no (the Fen river greenway's bike-only part)
    935235821: False,  # highway=cycleway, access=no, bicycle=yes, no foot tag
    935855594: True,   # highway=cycleway bridge, access=no but foot=yes
    806653657: True,   # highway=pedestrian, access=no but foot=yes
    773001658: False,  # highway=residential, access=no, motor_vehicle=yes (not for walking)
    193710523: False,  # highway=service, access=private
    191565806: True,   # highway=service, access=permissive
}
# Haidian (Beijing, the campus of the issue), raw OSM XML.
HAIDIAN_CYCLEWAYS = {
    121510231: True,   # highway=cycleway, oneway=yes, no foot tag
    930935493: True,   # highway=cycleway bridge, foot=designated
}
# Taiyuan: a highway=pedestrian area=yes plaza (multipolygons layer) that 7 ways meet.
PLAZA = 893028112


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def taiyuan_lines() -> gpd.GeoDataFrame:
    return data.read_taiyuan_lines()


@pytest.fixture(scope="module")
def taiyuan_polygons() -> gpd.GeoDataFrame:
    return data.read_taiyuan_polygons()


def _line_tags(lines: gpd.GeoDataFrame, osm_id: int) -> dict[str, str]:
    row = lines.loc[lines["osm_id"].astype("int64") == osm_id].iloc[0]
    return {**parse_other_tags(row["other_tags"]), "highway": row["highway"]}


def _xml_ways(path: Path) -> dict[int, dict[str, str]]:
    return {
        int(w.get("id")): {t.get("k"): t.get("v") for t in w.iter("tag")}
        for w in ET.parse(path).getroot().iter("way")
    }


def _edge_ways(G: nx.MultiDiGraph) -> set[int]:
    return {int(d["osmid"]) for _, _, d in G.edges(data=True)}


# -------------------------------------------------------------- cycleways and access rules


@pytest.fixture(scope="module")
def taiyuan_kept(taiyuan_lines: gpd.GeoDataFrame) -> set[int]:
    return set(walkable_lines(taiyuan_lines)["osm_id"].astype("int64"))


@pytest.mark.parametrize(("osm_id", "keep"), sorted(TAIYUAN_RULES.items()))
def test_taiyuan_ways_follow_the_rules(
    osm_id: int, keep: bool, taiyuan_lines: gpd.GeoDataFrame, taiyuan_kept: set[int]
) -> None:
    assert is_walkable(_line_tags(taiyuan_lines, osm_id)) is keep
    assert (osm_id in taiyuan_kept) is keep


def test_taiyuan_rule_ways_carry_the_tags_the_rules_name(taiyuan_lines: gpd.GeoDataFrame) -> None:
    """The chosen ids really are what the table above says (a changed extract fails here)."""
    t = {i: _line_tags(taiyuan_lines, i) for i in TAIYUAN_RULES}
    assert t[749884355]["highway"] == "cycleway" and "foot" not in t[749884355]
    assert t[749882388]["highway"] == "cycleway" and t[749882388]["foot"] == "yes"
    assert t[935855602]["highway"] == "cycleway" and t[935855602]["foot"] == "no"
    assert t[935235821]["access"] == "no" and "foot" not in t[935235821]
    assert t[935855594]["bridge"] == "yes" and t[935855594]["access"] == "no"
    assert t[935855594]["foot"] == "yes"
    assert t[773001658]["access"] == "no" and "foot" not in t[773001658]
    assert t[193710523]["access"] == "private"


def test_taiyuan_graph_holds_kept_ways_only(taiyuan_lines: gpd.GeoDataFrame) -> None:
    in_graph = _edge_ways(graph_from_lines(walkable_lines(taiyuan_lines)))
    for osm_id, keep in TAIYUAN_RULES.items():
        assert (osm_id in in_graph) is keep, osm_id


def test_every_foot_no_way_is_dropped_and_every_bare_cycleway_kept(
    taiyuan_lines: gpd.GeoDataFrame,
) -> None:
    tags = [
        {**parse_other_tags(o), "highway": h}
        for h, o in zip(taiyuan_lines["highway"], taiyuan_lines["other_tags"], strict=True)
    ]
    kept = set(walkable_lines(taiyuan_lines)["osm_id"].astype("int64"))
    ids = taiyuan_lines["osm_id"].astype("int64").to_numpy()
    foot_no = {i for i, t in zip(ids, tags, strict=True) if t.get("foot") == "no"}
    bare = {
        i for i, t in zip(ids, tags, strict=True)
        if t["highway"] == "cycleway" and not {"foot", "access"} & t.keys()
    }
    assert foot_no and bare
    assert not foot_no & kept
    assert bare <= kept


@pytest.mark.slow
def test_haidian_xml_keeps_its_cycleways(osm_xml: Path) -> None:
    ways = _xml_ways(osm_xml)
    in_graph = _edge_ways(graph_from_osm_xml(osm_xml))
    for osm_id, keep in HAIDIAN_CYCLEWAYS.items():
        assert ways[osm_id]["highway"] == "cycleway"
        assert (osm_id in in_graph) is keep
    assert {i for i, t in ways.items() if t.get("highway") == "cycleway"} <= in_graph


# ------------------------------------------------------------------------- pedestrian areas


@pytest.fixture(scope="module")
def plaza(taiyuan_polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    areas = walkable_areas(taiyuan_polygons)
    return areas[areas["osm_id"] == PLAZA]


def test_multipolygons_layer_areas(taiyuan_polygons: gpd.GeoDataFrame) -> None:
    areas = walkable_areas(taiyuan_polygons)
    assert PLAZA in set(areas["osm_id"])
    tags = taiyuan_polygons["other_tags"].map(parse_other_tags)
    pedestrian = {
        int(float(w if isinstance(w, str) and w else r))
        for w, r, t in zip(taiyuan_polygons["osm_way_id"], taiyuan_polygons["osm_id"], tags,
                           strict=True)
        if t.get("highway") in ("pedestrian", "footway")
    }
    assert set(areas["osm_id"]) == pedestrian
    # place=square alone (五一广场) names a place; it is not a walkable area by itself.
    squares = taiyuan_polygons[taiyuan_polygons["place"] == "square"]
    assert len(squares) and not set(squares["osm_way_id"].dropna().astype(float).astype(int)) & \
        set(areas["osm_id"])
    assert is_pedestrian_area({"highway": "pedestrian", "area": "yes"})
    assert is_pedestrian_area({"highway": "pedestrian", "type": "multipolygon"})
    assert not is_pedestrian_area({"highway": "pedestrian"})  # a closed way is a loop
    assert not is_pedestrian_area({"place": "square", "area": "yes"})


def _entrances(plaza: gpd.GeoDataFrame, lines: gpd.GeoDataFrame) -> list[tuple[float, float]]:
    """Outline vertices of the plaza that a walkable way of the lines layer also passes."""
    ring = shapely.get_coordinates(plaza.geometry.iloc[0].exterior)[:-1]
    line_xy = {tuple(c) for c in shapely.get_coordinates(lines.geometry.to_numpy())}
    return list(dict.fromkeys(tuple(c) for c in ring if tuple(c) in line_xy))


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


@pytest.fixture(scope="module")
def crossing(plaza: gpd.GeoDataFrame, taiyuan_lines: gpd.GeoDataFrame) -> dict[str, object]:
    """The two entrances that crossing saves most on, their straight line inside the plaza."""
    polygon = plaza.geometry.iloc[0]
    lines = walkable_lines(taiyuan_lines)
    lines = lines[lines.intersects(polygon.buffer(0.003))]  # the streets within about 300 m
    ent = _entrances(plaza, lines)
    assert len(ent) >= 4
    utm = plaza.estimate_utm_crs()
    poly_m = gpd.GeoSeries([polygon], crs=4326).to_crs(utm).iloc[0].buffer(0.01)
    ring_m = gpd.GeoSeries([polygon.exterior], crs=4326).to_crs(utm).iloc[0]
    best: dict[str, object] = {}
    saving = -1.0
    for a, b in itertools.combinations(ent, 2):
        pa, pb = gpd.GeoSeries([shapely.Point(a), shapely.Point(b)], crs=4326).to_crs(utm)
        if not poly_m.covers(shapely.LineString([pa, pb])):
            continue
        along = abs(ring_m.project(pa) - ring_m.project(pb))
        around = min(along, ring_m.length - along)  # the shorter way round the outline
        straight = _metres(a, b)
        if around - straight > saving:
            saving = around - straight
            best = {"a": a, "b": b, "straight": straight, "around": around}
    return {**best, "lines": lines}


def _node_at(G: nx.MultiDiGraph, xy: tuple[float, float]) -> int:
    at = G.graph.setdefault("_at", {})
    if not at:
        for n, d in G.nodes(data=True):
            at.setdefault((d["x"], d["y"]), []).append(n)
    (node,) = at[xy]
    return int(node)


@pytest.fixture(scope="module")
def plaza_graph(crossing: dict[str, object], plaza: gpd.GeoDataFrame) -> nx.MultiDiGraph:
    return graph_from_lines(crossing["lines"], areas=plaza)


def _walk(G: nx.MultiDiGraph, a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(nx.shortest_path_length(G, _node_at(G, a), _node_at(G, b), weight="length"))


def test_plaza_entrances_are_far_apart_around_the_edge(crossing: dict[str, object]) -> None:
    # The test means something only if going round the plaza is a real detour.
    assert crossing["around"] > 1.5 * crossing["straight"] > 100


def test_lines_plaza_is_crossed_straight(
    crossing: dict[str, object], plaza: gpd.GeoDataFrame, plaza_graph: nx.MultiDiGraph
) -> None:
    a, b, lines = crossing["a"], crossing["b"], crossing["lines"]
    G = plaza_graph
    assert _walk(G, a, b) == pytest.approx(crossing["straight"], rel=2e-3)
    # Its outline is walkable too: every outline segment is an edge of the plaza.
    ring = shapely.get_coordinates(plaza.geometry.iloc[0].exterior)
    for p, q in itertools.pairwise(map(tuple, ring)):
        assert G.has_edge(_node_at(G, p), _node_at(G, q))
    # Without the area the walk is longer (or impossible): what the old filter gave.
    G0 = graph_from_lines(lines)
    try:
        before = _walk(G0, a, b)
    except (nx.NetworkXNoPath, ValueError):
        before = np.inf
    assert before > 1.3 * crossing["straight"]


def test_lines_crossings_stay_inside_the_plaza(
    plaza: gpd.GeoDataFrame, plaza_graph: nx.MultiDiGraph
) -> None:
    G = plaza_graph
    polygon = plaza.geometry.iloc[0]
    across = [(u, v) for u, v, d in G.edges(data=True) if d.get("across")]
    assert across
    for u, v in across:
        seg = shapely.LineString([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in (u, v)])
        assert polygon.buffer(1e-5).covers(seg)
        assert G.has_edge(v, u)


# ------------------------------------------------------- the same plaza through OSM XML


def _write_osm(path: Path, lines: gpd.GeoDataFrame, plaza: gpd.GeoDataFrame, *,
               as_relation: bool) -> None:
    """Write real Taiyuan ways and the plaza as OSM XML (a shared vertex is one node)."""
    ids: dict[tuple[float, float], int] = {}

    def refs(geom: shapely.Geometry) -> list[int]:
        return [ids.setdefault((float(x), float(y)), len(ids) + 1)
                for x, y in shapely.get_coordinates(geom)]

    ways = [(int(r.osm_id), refs(r.geometry), {**parse_other_tags(r.other_tags),
                                               "highway": r.highway}) for r in lines.itertuples()]
    ring = refs(plaza.geometry.iloc[0].exterior)
    plaza_tags = {"highway": "pedestrian", "area": "yes"}
    ways.append((PLAZA, ring, {} if as_relation else plaza_tags))
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    out += [f' <node id="{i}" lat="{y!r}" lon="{x!r}"/>' for (x, y), i in ids.items()]
    for wid, nds, tags in ways:
        out.append(f' <way id="{wid}">')
        out += [f'  <nd ref="{n}"/>' for n in nds]
        out += [f"  <tag k={quoteattr(k)} v={quoteattr(str(v))}/>" for k, v in tags.items()]
        out.append(" </way>")
    if as_relation:
        out += [' <relation id="1">', f'  <member type="way" ref="{PLAZA}" role="outer"/>',
                '  <tag k="type" v="multipolygon"/>', '  <tag k="highway" v="pedestrian"/>',
                " </relation>"]
    out.append("</osm>")
    path.write_text("\n".join(out), encoding="utf-8")


@pytest.mark.parametrize("as_relation", [False, True], ids=["closed-way", "multipolygon"])
def test_xml_plaza_is_crossed_straight(
    as_relation: bool, crossing: dict[str, object], plaza: gpd.GeoDataFrame,
    plaza_graph: nx.MultiDiGraph, tmp_path: Path,
) -> None:
    path = tmp_path / "plaza.osm"
    _write_osm(path, crossing["lines"], plaza, as_relation=as_relation)
    G = graph_from_osm_xml(path)
    a, b = crossing["a"], crossing["b"]
    assert _walk(G, a, b) == pytest.approx(crossing["straight"], rel=2e-3)
    # The outline way is walkable even when only the relation carries the tags.
    outline = [d for _, _, d in G.edges(data=True) if d["osmid"] == PLAZA]
    assert outline and all(d["area"] == "yes" for d in outline)
    # The XML path and the lines path cross the plaza the same way.
    lines_G = plaza_graph
    xml_across = sum(1 for _, _, d in G.edges(data=True) if d.get("across"))
    lines_across = sum(1 for _, _, d in lines_G.edges(data=True) if d.get("across"))
    assert xml_across == lines_across > 0


@pytest.mark.slow
def test_longgang_plaza_relation_outline_is_walkable() -> None:
    """Shenzhen: the 大运中心 plaza is a highway=pedestrian multipolygon around the arena."""
    if not LONGGANG_OSM.is_file():
        pytest.skip(f"{LONGGANG_OSM} is not here")
    root = ET.parse(LONGGANG_OSM).getroot()
    (rel,) = [r for r in root.iter("relation") if r.get("id") == "7759075"]
    tags = {t.get("k"): t.get("v") for t in rel.iter("tag")}
    assert is_pedestrian_area(tags)
    members = {int(m.get("ref")) for m in rel.iter("member")}
    ways = _xml_ways(LONGGANG_OSM)
    assert any(not is_walkable(ways[w]) for w in members)  # untagged outer, building inner
    G = graph_from_osm_xml(LONGGANG_OSM)
    assert members <= _edge_ways(G)
