"""Fuzz the loaders that read files from the open internet: OSM XML and residents files.

Every case ends one of two ways: the loader answers (and an import leaves exactly one loadable
district in the cache), or it refuses with its named error: a one-line message and, for an
import, nothing at all in the cache. Any other exception is a bug. The seeds are small real
slices of the bundled data, so each case takes a fraction of a second.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geo
from geo._errors import DemandFileError, OSMDataError
from geo.demand import MAX_COUNT, cell_demand
from geo.district import import_osm, load_district
from geo.network import MAX_IMPORT_SPAN_KM, check_osm_xml, graph_from_osm_xml

# A slice of the bundled Haidian export: ways touching a 260 m box near the CAU campus, with
# every node they use (as the OSM website's export does) and the tagged nodes in the box.
SLICE_LON, SLICE_LAT, SLICE_HALF_DEG = 116.3519, 40.0033, 0.0012
NAME = "模糊测试"
FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ OSM XML seed


def _slice(osm_xml: Path) -> ET.Element:
    root = ET.parse(osm_xml).getroot()  # the bundled file, trusted
    nodes = {n.get("id"): n for n in root.iter("node")}
    inside = sorted(
        i for i, n in nodes.items()
        if abs(float(n.get("lon", "nan")) - SLICE_LON) < SLICE_HALF_DEG
        and abs(float(n.get("lat", "nan")) - SLICE_LAT) < SLICE_HALF_DEG
    )
    chosen = set(inside)
    ways = [w for w in root.iter("way") if any(nd.get("ref") in chosen for nd in w.iter("nd"))]
    used = list(dict.fromkeys(nd.get("ref") for w in ways for nd in w.iter("nd")))
    tagged = [i for i in inside if i not in set(used) and nodes[i].find("tag") is not None]
    out = ET.Element("osm", root.attrib)
    out.extend(nodes[i] for i in [*used, *tagged])
    out.extend(ways)
    ET.indent(out, space=" ")
    return out


def _xml(root: ET.Element) -> bytes:
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="UTF-8", xml_declaration=True)
    return buf.getvalue() + b"\n"


@pytest.fixture(scope="module")
def seed_tree(osm_xml: Path) -> ET.Element:
    return _slice(osm_xml)


@pytest.fixture(scope="module")
def seed(seed_tree: ET.Element) -> bytes:
    return _xml(seed_tree)


def _walk_node(root: ET.Element) -> ET.Element:
    """The first node of the first walkable way (so it is in the walking network)."""
    nodes = {n.get("id"): n for n in root.iter("node")}
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") in {"footway", "residential", "service", "path", "pedestrian"}:
            return nodes[way.find("nd").get("ref")]
    raise AssertionError("the seed has no walkable way")


def _variant(seed_tree: ET.Element, change: Callable[[ET.Element], None]) -> bytes:
    root = ET.fromstring(_xml(seed_tree))
    change(root)
    return _xml(root)


def _cache_entries(cache: Path) -> list[str]:
    folder = cache / "districts"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def import_or_refuse(path: Path, cache: Path, name: str = NAME) -> str | None:
    """Import; return None if it worked, else the refusal (checked: one line, cache empty)."""
    try:
        district = import_osm(path, name, cache_dir=cache)
    except OSMDataError as e:
        message = str(e)
        assert "\n" not in message and "\r" not in message, message
        assert len(message) < len(str(path)) + 400, message
        assert _cache_entries(cache) == [], "an import that failed left files in the cache"
        return message
    assert _cache_entries(cache) == [name]
    loaded = load_district(name, cache)
    assert len(loaded.nodes) == district.meta["nodes"] and len(loaded.cells) > 0
    return None


def test_seed_is_a_small_real_slice_that_imports(seed: bytes, tmp_path: Path) -> None:
    # Without this, every refusal below could be the seed's own fault.
    assert 20_000 < len(seed) < 60_000
    path = tmp_path / "seed.osm"
    path.write_bytes(seed)
    check_osm_xml(path)
    assert import_or_refuse(path, tmp_path / "cache") is None
    assert geo.cached_districts(tmp_path / "cache") == [NAME]


# ------------------------------------------------------------- OSM XML: crafted hostile cases


def _set(attr: str, value: str) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        _walk_node(root).set(attr, value)

    return change


def _drop(attr: str) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        del _walk_node(root).attrib[attr]

    return change


def _way_set(attr: str, value: str, child: str | None = None) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        way = root.find("way")
        assert way is not None
        target = way.find(child) if child else way
        assert target is not None
        target.set(attr, value)

    return change


def _move_all(lat: str) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        for node in root.iter("node"):
            node.set("lat", lat + node.get("lat", "")[2:])

    return change


def _append(xml: str, where: str = "osm") -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        parent = root if where == "osm" else root.find(where)
        assert parent is not None
        parent.append(ET.fromstring(xml))

    return change


def _drop_node_of_first_way(root: ET.Element) -> None:
    ref = root.find("way/nd").get("ref")
    root.remove(next(n for n in root.iter("node") if n.get("id") == ref))


def _one_straight_way(root: ET.Element) -> None:
    for child in list(root):
        root.remove(child)
    for i, lon in enumerate(("116.3500", "116.3505", "116.3510"), start=1):
        root.append(ET.Element("node", id=str(i), lat="40.0000", lon=lon))
    way = ET.SubElement(root, "way", id="7")
    for i in (1, 2, 3):
        ET.SubElement(way, "nd", ref=str(i))
    ET.SubElement(way, "tag", k="highway", v="footway")


TREE_CASES: dict[str, tuple[Callable[[ET.Element], None], str]] = {
    "lon 999.3": (_set("lon", "999.3"), r"lon='999\.3', not a number of degrees from -180 to 180"),
    "lon -180.5": (_set("lon", "-180.5"), "lon='-180.5'"),
    "lat 90.0001": (_set("lat", "90.0001"), "lat='90.0001'"),
    "lat nan": (_set("lat", "nan"), "lat='nan'"),
    "lon inf": (_set("lon", "inf"), "lon='inf'"),
    "lon 1e400": (_set("lon", "1e400"), "lon='1e400'"),
    "lon empty": (_set("lon", ""), "lon=''"),
    "lon with a space": (_set("lon", " 116.35"), "lon=' 116.35'"),
    "lon arabic digits": (_set("lon", "١١٦.٣"), "lon="),
    "lon 100 kB of digits": (_set("lon", "1" * 100_000), r"lon='1{40}…'"),
    "lat missing": (_drop("lat"), "has no lat"),
    "id missing": (_drop("id"), "<node> without id"),
    "id not a number": (_set("id", "abc"), "id='abc' is not a 64-bit integer"),
    "id beyond 64 bits": (_set("id", "9" * 30), "is not a 64-bit integer"),
    "id with underscores": (_set("id", "1_000"), "id='1_000'"),
    "version a fraction": (_set("version", "1.5"), "version='1.5'"),
    "way nd ref missing": (_way_set("ref", "", "nd"), "ref='' is not a 64-bit integer"),
    "way to a node not in the file": (_drop_node_of_first_way, "not in the file"),
    "tag without v": (_append("<tag k='highway'/>", "way"), "<tag> without k and v"),
    "tag outside an element": (_append("<tag k='a' v='b'/>"), "<tag> inside <osm>"),
    "nd inside a node": (_append("<nd ref='1'/>", "node"), "<nd> inside <node>"),
    "node nested in a way": (_append("<node id='5' lat='1' lon='1'/>", "way"),
                             "<node> inside <way>"),
    "ways spread over 600 km": (_set("lon", "123.3"), f"{MAX_IMPORT_SPAN_KM:g} km a side"),
    "network beyond UTM (lat 85)": (_move_all("85"), "outside the -80..84"),
    "one straight way": (_one_straight_way, "enclose no area"),
}


@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_hostile_osm_values_are_refused(
    case: str, seed_tree: ET.Element, tmp_path: Path
) -> None:
    change, message = TREE_CASES[case]
    path = tmp_path / "hostile.osm"
    path.write_bytes(_variant(seed_tree, change))
    refusal = import_or_refuse(path, tmp_path / "cache")
    assert refusal is not None, f"{case}: imported"
    assert path.name in refusal
    assert re.search(message, refusal), refusal


def _with_dtd(seed: bytes, dtd: str, body_tag: str = "") -> bytes:
    text = seed.decode()
    head, rest = text.split("\n", 1)
    if body_tag:
        rest = rest.replace("</way>", body_tag + "</way>", 1)
    return f"{head}\n{dtd}\n{rest}".encode()


BILLION_LAUGHS = "<!DOCTYPE osm [\n <!ENTITY l0 'ha'>\n" + "".join(
    f" <!ENTITY l{i} '" + f"&l{i - 1};" * 10 + "'>\n" for i in range(1, 10)
) + "]>"


def test_billion_laughs_is_refused_before_expansion(seed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "laughs.osm"
    path.write_bytes(_with_dtd(seed, BILLION_LAUGHS, "<tag k='name' v='&l9;'/>"))
    refusal = import_or_refuse(path, tmp_path / "cache")
    assert refusal is not None and "document type declaration" in refusal


@pytest.mark.parametrize(
    "dtd",
    [
        "<!DOCTYPE osm [<!ENTITY xxe SYSTEM '{uri}'>]>",
        "<!DOCTYPE osm SYSTEM '{uri}'>",
        "<!DOCTYPE osm [<!ENTITY % p SYSTEM '{uri}'> %p;]>",
        "<!DOCTYPE osm [<!ENTITY xxe PUBLIC 'x' '{uri}'>]>",
    ],
    ids=["general entity", "external DTD", "parameter entity", "public id"],
)
def test_external_entities_are_never_read(seed: bytes, tmp_path: Path, dtd: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("CANARY-7f3c0b1e\n")
    path = tmp_path / "xxe.osm"
    body = "<tag k='name' v='&xxe;'/>" if "xxe" in dtd else ""
    path.write_bytes(_with_dtd(seed, dtd.format(uri=secret.as_uri()), body))
    refusal = import_or_refuse(path, tmp_path / "cache")
    assert refusal is not None and "document type declaration" in refusal
    assert "CANARY" not in refusal


def test_a_doctype_of_another_root_is_not_osm(tmp_path: Path) -> None:
    path = tmp_path / "page.osm"
    path.write_text("<!DOCTYPE html>\n<html><body>hi</body></html>")
    with pytest.raises(OSMDataError, match=r"not OSM XML \(root element <html>"):
        check_osm_xml(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "the file is empty"),
        ("whitespace", "not XML"),
        ("declaration only", "not XML"),
        ("utf-16", "not UTF-8"),
        ("latin-1 bytes", "not UTF-8"),
        ("declared gbk", "declares encoding 'GBK'"),
        ("nul byte", "broken or truncated"),
        ("empty osm", "no walkable ways"),
        ("osm namespace prefix", "not OSM XML"),
    ]
    + [(f"truncated at {k}/8", "truncated") for k in range(1, 8)],
)
def test_broken_osm_files_are_refused(
    case: str, message: str, seed: bytes, tmp_path: Path
) -> None:
    head, body = seed.split(b"\n", 1)
    content = {
        "empty": b"",
        "whitespace": b" \n\t\n",
        "declaration only": head + b"\n",
        "utf-16": seed.decode().replace("UTF-8", "UTF-16").encode("utf-16"),
        "latin-1 bytes": seed.replace(b"</osm>", b"<!-- caf\xe9 --></osm>"),
        "declared gbk": head.replace(b"UTF-8", b"GBK") + b"\n" + body,
        "nul byte": seed.replace(b"<way ", b"<way \x00", 1),
        "empty osm": b"<?xml version='1.0'?><osm version='0.6'/>",
        "osm namespace prefix": b"<x:osm xmlns:x='urn:x'></x:osm>",
    }.get(case)
    if content is None:  # truncated
        k = int(case.split()[-1].split("/")[0])
        content = seed[: len(seed) * k // 8]
    path = tmp_path / "broken.osm"
    path.write_bytes(content)
    refusal = import_or_refuse(path, tmp_path / "cache")
    assert refusal is not None and message in refusal, refusal


@pytest.mark.parametrize(
    "case", ["utf-8 bom", "1 MB tag value", "10,000 attributes", "deep unknown nesting"]
)
def test_odd_but_valid_osm_files_import(case: str, seed: bytes, tmp_path: Path) -> None:
    if case == "utf-8 bom":
        content = b"\xef\xbb\xbf" + seed
    elif case == "1 MB tag value":
        content = seed.replace(b"</way>", b"<tag k='note' v='" + b"x" * 1_000_000 + b"'/></way>", 1)
    elif case == "10,000 attributes":
        attrs = " ".join(f"a{i}='{i}'" for i in range(10_000)).encode()
        content = seed.replace(b"<node ", b"<node " + attrs + b" ", 1)
    else:
        content = seed.replace(b"</osm>", b"<a>" * 5_000 + b"</a>" * 5_000 + b"</osm>")
    path = tmp_path / "odd.osm"
    path.write_bytes(content)
    assert import_or_refuse(path, tmp_path / "cache") is None


# ---------------------------------------------------------------- OSM XML: random mutations

INSERTS = [b"9" * 400, b"1e400", b"nan", b"-", b"\x00", b"\xff\xfe", b"\xe9", b"\n", b'"', b"'",
           b"<", b">", b"&", b"&amp;", b"<node/>", b"<tag k='highway' v='footway'/>",
           b"</way>", b"<way id='5'>", b"<nd ref='1'/>", b"<!DOCTYPE osm>", b"]]>", b"<?x?>"]

MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 2**20)),
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(0, 7)),
    st.tuples(st.just("replace"), st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.sampled_from(INSERTS)),
    st.tuples(st.just("delete"), st.integers(0, 2**20), st.integers(1, 200)),
)


def mutate(content: bytes, mutations: list[tuple]) -> bytes:
    b = bytearray(content)
    for kind, at, *arg in mutations:
        i = at % max(len(b), 1)
        if kind == "truncate":
            del b[i:]
        elif kind == "flip" and b:
            b[i] ^= 1 << arg[0]
        elif kind == "replace":
            b[i : i + len(arg[0])] = arg[0]
        elif kind == "insert":
            b[i:i] = arg[0]
        elif kind == "delete":
            del b[i : i + arg[0]]
    return bytes(b)


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_osm_imports_or_is_refused_cleanly(seed: bytes, mutations: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.osm"
        path.write_bytes(mutate(seed, mutations))
        import_or_refuse(path, Path(tmp) / "cache")


# ------------------------------------------------------------------------ residents files


@pytest.fixture(scope="module")
def demand_seeds(district: geo.District, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A CSV, a GeoJSON and a GeoPackage of residents in the bundled district's cells."""
    cells = district.cells.iloc[:4]
    folder = tmp_path_factory.mktemp("demand-seeds")
    csv = folder / "seed.csv"
    pd.DataFrame({"lon": cells["lon"].round(6), "lat": cells["lat"].round(6),
                  "population": [120, 80, 40, 10]}).to_csv(csv, index=False)
    frame = gpd.GeoDataFrame(
        {"population": [100.0, 50.0, 25.0], "name": ["甲", "乙", "丙"]},
        geometry=[shapely.Point(cells["lon"].iloc[0], cells["lat"].iloc[0]),
                  cells.geometry.iloc[1], cells.geometry.iloc[2]],
        crs="EPSG:4326",
    )
    frame.to_file(folder / "seed.geojson", driver="GeoJSON")
    frame.to_crs(district.meta["crs_metric"]).to_file(folder / "seed.gpkg", driver="GPKG")
    return {ext: (folder / f"seed.{ext}").read_bytes() for ext in ("csv", "geojson", "gpkg")}


def demand_or_refuse(district: geo.District, path: Path) -> str | None:
    """Read residents; return None if it worked, else the refusal (checked: one line)."""
    try:
        dem = cell_demand(district, demand_file=path)
    except DemandFileError as e:
        message = str(e)
        assert "\n" not in message and len(message) < len(str(path)) + 400, message
        return message
    pop = dem["population"].to_numpy()
    assert np.isfinite(pop).all() and (pop >= 0).all() and pop.sum() > 0
    assert list(dem.index) == list(district.cells["cell_id"])
    return None


def test_demand_seeds_are_read(district: geo.District, demand_seeds: dict,
                               tmp_path: Path) -> None:
    expected = {"csv": 250.0, "geojson": 175.0, "gpkg": 175.0}
    for ext, content in demand_seeds.items():
        path = tmp_path / f"people.{ext}"
        path.write_bytes(content)
        assert demand_or_refuse(district, path) is None
        total = cell_demand(district, demand_file=path)["population"].sum()
        assert total == pytest.approx(expected[ext], rel=1e-6)


def _geojson(district: geo.District, **properties: object) -> dict:
    cell = district.cells.iloc[0]
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"population": 5, **properties},
        "geometry": {"type": "Point", "coordinates": [cell["lon"], cell["lat"]]}}]}


def _demand_case(case: str, district: geo.District, seeds: dict, secret: Path) -> tuple[str, bytes]:
    cell = district.cells.iloc[0]
    lon, lat = float(cell["lon"]), float(cell["lat"])
    csv_row = "lon,lat,population\n{},{},{}\n"
    ring = [[lon - 0.001, lat - 0.001], [lon + 0.001, lat + 0.001], [lon + 0.001, lat - 0.001],
            [lon - 0.001, lat + 0.001], [lon - 0.001, lat - 0.001]]
    bowtie = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"population": 10},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    flat = json.loads(json.dumps(bowtie))
    flat["features"][0]["geometry"]["coordinates"] = [
        [[lon, lat], [lon + 0.001, lat], [lon + 0.002, lat], [lon, lat]]]
    point = _geojson(district)
    out_of_range = json.loads(json.dumps(point))
    out_of_range["features"][0]["geometry"]["coordinates"] = [lon, 269.0]
    cases: dict[str, tuple[str, bytes]] = {
        "empty csv": ("csv", b""),
        "empty geojson": ("geojson", b""),
        "empty gpkg": ("gpkg", b""),
        "header only": ("csv", b"lon,lat,population\n"),
        "utf-16 csv": ("csv", seeds["csv"].decode().encode("utf-16")),
        "latin-1 csv": ("csv", "lon,lat,popula\u00e9\n1,2,3\n".encode("latin-1")),
        "400-digit count": ("csv", csv_row.format(lon, lat, "9" * 400).encode()),
        "count 1e400": ("csv", csv_row.format(lon, lat, "1e400").encode()),
        "count inf": ("csv", csv_row.format(lon, lat, "inf").encode()),
        "count above the maximum": ("csv", csv_row.format(lon, lat, f"{MAX_COUNT * 10:g}")
                                    .encode()),
        "400-digit lon": ("csv", csv_row.format("9" * 400, lat, 5).encode()),
        "counts all zero": ("csv", csv_row.format(lon, lat, 0).encode()),
        "everyone elsewhere": ("csv", csv_row.format(10.0, 10.0, 5).encode()),
        "1 MB count text": ("geojson", json.dumps(_geojson(district, population="x" * 10**6))
                            .encode()),
        "geojson 400-digit count": ("geojson", json.dumps(point).replace(
            '"population": 5', '"population": ' + "9" * 400).encode()),
        "geojson lat 269": ("geojson", json.dumps(out_of_range).encode()),
        "geojson nested 100,000 deep": ("geojson", b'{"type":"FeatureCollection","features":'
                                        + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "geojson an array": ("geojson", b"[1, 2, 3]"),
        "utf-16 geojson": ("geojson", json.dumps(point).encode("utf-16")),
        "vrt named geojson": ("geojson", (
            "<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>CSV:"
            f"{secret}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>").encode()),
        "vrt named gpkg": ("gpkg", (
            "<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>CSV:"
            f"{secret}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>").encode()),
        "sqlite but not geopackage": ("gpkg", seeds["gpkg"][:68] + b"XXXX" + seeds["gpkg"][72:]),
        "gpkg truncated": ("gpkg", seeds["gpkg"][:4096]),
        "polygon without area": ("geojson", json.dumps(flat).encode()),
        "self-crossing polygon": ("geojson", json.dumps(bowtie).encode()),
    }
    return cases[case]


DEMAND_REFUSALS = {
    "empty csv": "cannot read CSV",
    "empty geojson": "the file is empty",
    "empty gpkg": "the file is empty",
    "header only": "no rows",
    "utf-16 csv": "cannot read CSV",
    "latin-1 csv": "cannot read CSV",
    "400-digit count": "counts above",
    "count 1e400": "counts above",
    "count inf": "counts above",
    "count above the maximum": "counts above",
    "400-digit lon": "missing or non-numeric coordinates",
    "counts all zero": "its counts sum to 0",
    "everyone elsewhere": "none of its 5 residents lie in the grid cells",
    "1 MB count text": "non-numeric values (e.g. 'xxxx",
    "geojson 400-digit count": "cannot read residents",
    "geojson lat 269": "coordinates outside longitude/latitude",
    "geojson nested 100,000 deep": "cannot read residents",
    "geojson an array": "not GeoJSON",
    "utf-16 geojson": "not GeoJSON",
    "vrt named geojson": "not GeoJSON",
    "vrt named gpkg": "not a GeoPackage",
    "sqlite but not geopackage": "not a GeoPackage",
    "gpkg truncated": "cannot read residents",
    "polygon without area": "polygon without area",
}


@pytest.mark.parametrize("case", sorted(DEMAND_REFUSALS))
def test_hostile_demand_files_are_refused(case: str, district: geo.District,
                                          demand_seeds: dict, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("CANARY-7f3c0b1e,population\n1,2\n")
    ext, content = _demand_case(case, district, demand_seeds, secret)
    path = tmp_path / f"people.{ext}"
    path.write_bytes(content)
    refusal = demand_or_refuse(district, path)
    assert refusal is not None, f"{case}: accepted"
    assert DEMAND_REFUSALS[case] in refusal and "CANARY" not in refusal, refusal


def test_self_crossing_polygon_is_repaired_not_lost(district: geo.District,
                                                    demand_seeds: dict, tmp_path: Path) -> None:
    _, content = _demand_case("self-crossing polygon", district, demand_seeds, tmp_path / "x")
    path = tmp_path / "bowtie.geojson"
    path.write_bytes(content)
    dem = cell_demand(district, demand_file=path)
    assert dem["population"].sum() == pytest.approx(10.0)


@FUZZ
@given(ext=st.sampled_from(["csv", "geojson", "gpkg"]),
       mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_demand_file_is_read_or_refused_cleanly(
    district: geo.District, demand_seeds: dict, ext: str, mutations: list[tuple]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"people.{ext}"
        path.write_bytes(mutate(demand_seeds[ext], mutations))
        demand_or_refuse(district, path)


def test_graph_reader_refuses_what_the_import_refuses(seed_tree: ET.Element,
                                                      tmp_path: Path) -> None:
    # The check sits in the XML reader itself, not only in import_osm.
    path = tmp_path / "far.osm"
    path.write_bytes(_variant(seed_tree, _set("lon", "999.3")))
    with pytest.raises(OSMDataError, match=r"lon='999\.3'"):
        graph_from_osm_xml(path)
