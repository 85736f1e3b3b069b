"""Build the walking network from OSM data and attach positions to its streets."""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from xml.parsers import expat

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.spatial import cKDTree

from geo._errors import OSMDataError, OutOfAreaError

# osmnx's "walk" network filter (osmnx/_overpass.py) less cycleways, applied to tags we already
# hold; cycleways, access and pedestrian areas follow the rules of docs/walk-filter.md.
_EXCLUDED_HIGHWAY = re.compile(
    "abandoned|bus_guideway|construction|motor|no|planned|platform|proposed|"
    "raceway|razed|rest_area|services"
)
_PRIVATE = re.compile("private")
_NO_ACCESS = frozenset({"no", "private"})
_FOOT_DENIED = frozenset({"no", "private"})
#: ``foot`` values that let people walk where ``access`` alone would not.
_FOOT_ALLOWED = frozenset({"yes", "designated", "permissive"})
#: Highways whose ``area=yes`` ways (and multipolygons) are open spaces people walk across.
PEDESTRIAN_AREA_HIGHWAYS = frozenset({"pedestrian", "footway"})
_SEPARATE_SIDEWALK_KEYS = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")
# Tags the filter reads (kept on edges; a reader that cuts a file down keeps at least these and
# ``name``; ``type`` marks a multipolygon relation).
_WALK_TAGS = ("highway", "area", "access", "foot", "service", "type", *_SEPARATE_SIDEWALK_KEYS)
#: Tags that lift a way off the ground or put it under it (read by :func:`is_elevated`).
LEVEL_TAGS = ("bridge", "tunnel", "covered", "layer")
# ``tunnel`` values of ways still at street level: a passage through a building is entered from
# the street (and the building) beside it.
_GROUND_TUNNELS = frozenset({"no", "building_passage"})
_HSTORE_ESCAPE = re.compile(r"\\(.)")
_HSTORE_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
#: A position farther than this from every walkable street is out of the district's area: the
#: walk would be guessed, not measured. One bound for the map, matching and requests.
MAX_ACCESS_M = 800.0
#: A resident's walk may start on any street at most this much farther than the nearest one
#: (see :meth:`WalkNetwork.attach_near`): a few seconds' detour, as routing engines snap.
DEFAULT_SNAP_M = 50.0
# Edge weights must stay positive: csgraph would read an explicit zero as "no edge".
_MIN_WEIGHT_M = 1e-6
# How far (degrees, about 10 cm) a straight crossing may stray outside a pedestrian area.
_AREA_TOLERANCE_DEG = 1e-6
#: The widest an imported walking network may be (each side of its bounding box): a district,
#: not a province. It bounds the grid an import builds (about 100,000 H3 cells at most); a wider
#: one is nearly always a wrong coordinate.
MAX_IMPORT_SPAN_KM = 100.0
#: Latitudes where a UTM zone exists (the metric CRS of every district).
_UTM_LATITUDES = (-80.0, 84.0)
_KM_PER_DEGREE = 111.32
# OSM XML values as osmnx converts them (int() and float() would also take "1_000", " 7", "nan",
# "١٢"): plain ASCII integers that fit 64 bits, and plain decimals.
_OSM_INT = re.compile(r"-?[0-9]{1,19}")
_OSM_DECIMAL = re.compile(
    r"[-+]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][-+]?[0-9]{1,3})?"
)
_OSM_ELEMENTS = frozenset({"node", "way", "relation"})
_OSM_INT_ATTRS = ("id", "version", "changeset", "uid")
# Which element each child of an OSM element must sit in (osmnx assumes it).
_OSM_PARENTS = {"tag": _OSM_ELEMENTS, "nd": frozenset({"way"}), "member": frozenset({"relation"})}
_XML_CHUNK = 1 << 16


def parse_other_tags(text: object) -> dict[str, str]:
    """Parse the hstore ``other_tags`` string written by GDAL's OSM driver."""
    if not isinstance(text, str) or not text:
        return {}
    return {_unescape(k): _unescape(v) for k, v in _HSTORE_PAIR.findall(text)}


def _unescape(text: str) -> str:
    return _HSTORE_ESCAPE.sub(r"\1", text)


def _tag(tags: Mapping[str, Any], key: str) -> str:
    """Return a tag's value; missing, None or NaN (a pandas gap) count as empty."""
    value = tags.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _values(tags: Mapping[str, Any], key: str) -> set[str]:
    """Return a tag's values (OSM separates them by ``;``), stripped and lower-cased."""
    return {v.strip().lower() for v in _tag(tags, key).split(";")} - {""}


def is_walkable(tags: Mapping[str, Any]) -> bool:
    """Tell whether people walk along a way: a street, a path or a pedestrian area's outline.

    The rules (docs/walk-filter.md): a ``highway`` that osmnx's ``walk`` filter keeps, and
    ``highway=cycleway`` too; never ``foot=no``; ``access=no`` or ``private`` (or
    ``service=private``) only where ``foot=yes``, ``designated`` or ``permissive`` allows it;
    ``area=yes`` only for :data:`PEDESTRIAN_AREA_HIGHWAYS` (see :func:`is_pedestrian_area`); no
    road whose sidewalks are mapped as separate ways.

    Parameters
    ----------
    tags
        The way's OSM tags; missing or empty values count as absent.
    """
    highway = _tag(tags, "highway")
    if not highway or _EXCLUDED_HIGHWAY.search(highway):
        return False
    foot = _values(tags, "foot")
    if foot & _FOOT_DENIED:
        return False
    if re.search("yes", _tag(tags, "area")) and highway not in PEDESTRIAN_AREA_HIGHWAYS:
        return False
    closed = _values(tags, "access") & _NO_ACCESS or _PRIVATE.search(_tag(tags, "service"))
    if closed and not foot & _FOOT_ALLOWED:
        return False
    return not any(re.search("separate", _tag(tags, k)) for k in _SEPARATE_SIDEWALK_KEYS)


def _level_values(tags: Mapping[str, Any], key: str) -> set[str]:
    """Return a tag's values as :func:`_values` does; a list (osmnx merged ways) counts each."""
    value = tags.get(key)
    if isinstance(value, (list, tuple, set, frozenset)):
        return {v for item in value for v in _values({key: item}, key)}
    return _values(tags, key)


def _off_layer_zero(layers: set[str]) -> bool:
    for value in layers:
        try:
            if float(value) != 0:
                return True
        except ValueError:
            continue  # "layer=high" says nothing usable
    return False


def is_elevated(tags: Mapping[str, Any]) -> bool:
    """Tell whether a way is off the ground: walked along, but not stepped onto from beside it.

    A bridge (``bridge`` other than ``no``), a tunnel (``tunnel`` other than ``no`` or
    ``building_passage``, a passage at street level), or a ``covered`` way on a ``layer`` other
    than 0. ``layer`` alone does not count: it only orders ways drawn over each other. Values
    may be lists (an osmnx graph merged several ways) or ``;``-separated: any one counts.

    Parameters
    ----------
    tags
        The way's OSM tags (or an edge's attributes); missing or empty values count as absent.
    """
    if _level_values(tags, "bridge") - {"no"}:
        return True
    if _level_values(tags, "tunnel") - _GROUND_TUNNELS:
        return True
    covered = _level_values(tags, "covered") - {"no"}
    return bool(covered) and _off_layer_zero(_level_values(tags, "layer"))


def _any_true(value: Any) -> bool:
    """Read an edge's ``elevated`` attribute; a list (edges merged by osmnx) if any is true."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_any_true(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, str):  # read back from a text format such as GraphML
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def is_pedestrian_area(tags: Mapping[str, Any]) -> bool:
    """Tell whether a closed way or a multipolygon is an open space people walk across.

    A walkable (:func:`is_walkable`) ``highway=pedestrian`` or ``footway`` tagged ``area=yes``,
    or such a relation of ``type=multipolygon``. Its outline is walked like a way and straight
    lines inside it join the ways that meet it.

    Parameters
    ----------
    tags
        The way's or relation's OSM tags.
    """
    area = _tag(tags, "area") == "yes" or _tag(tags, "type") == "multipolygon"
    return area and _tag(tags, "highway") in PEDESTRIAN_AREA_HIGHWAYS and is_walkable(tags)


def walkable_lines(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the ways of a GDAL OSM ``lines`` layer that pass the walk filter."""
    other = lines["other_tags"].map(parse_other_tags)
    rows = []
    for highway, extra in zip(lines["highway"], other, strict=True):
        tags = dict(extra)
        tags["highway"] = highway
        rows.append(is_walkable(tags))
    return lines.loc[np.asarray(rows, dtype=bool)]


def walkable_areas(polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the pedestrian areas (:func:`is_pedestrian_area`) of a GDAL ``multipolygons`` layer.

    GDAL writes a closed way tagged ``area=yes`` (or a multipolygon relation) to this layer and
    drops the ``area`` tag itself, so every row counts as an area; ``highway`` sits in
    ``other_tags`` unless the layer has a column for it.

    Returns
    -------
    gpd.GeoDataFrame
        ``osm_id`` (the way's id, or the relation's), ``highway``, ``name`` and the polygon.
    """
    columns = ["osm_id", "highway", "name", "geometry"]
    if polygons.empty:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs=polygons.crs)
    rows = []
    for i, (_, row) in enumerate(polygons.iterrows()):
        tags: dict[str, Any] = parse_other_tags(row.get("other_tags"))
        for key in ("highway", "access", "foot"):
            if _tag(row, key):
                tags[key] = _tag(row, key)
        tags["area"] = "yes"
        if not is_pedestrian_area(tags):
            continue
        way, rel = _tag(row, "osm_way_id"), _tag(row, "osm_id")
        rows.append((i, int(float(way or rel)), tags["highway"], _tag(row, "name")))
    keep = [r[0] for r in rows]
    out = gpd.GeoDataFrame(
        {
            "osm_id": np.array([r[1] for r in rows], dtype=np.int64),
            "highway": [r[2] for r in rows],
            "name": [r[3] for r in rows],
        },
        geometry=polygons.geometry.iloc[keep].to_numpy(),
        crs=polygons.crs,
    )
    return out[columns]


@dataclass(frozen=True)
class _Area:
    """A pedestrian area in a graph: its polygon, its rings' nodes and the ways drawing them."""

    osmid: int
    highway: str
    name: str
    polygon: shapely.Geometry
    ring: tuple[int, ...]
    ways: frozenset[int]


def _add_area_crossings(G: nx.MultiDiGraph, areas: list[_Area]) -> int:
    """Join the ways that meet each pedestrian area by straight edges across it.

    An entrance is a node on the area's rings where an edge of another walkable way (or of
    another area) meets it; every two entrances whose straight segment lies inside the polygon
    (holes excluded, within :data:`_AREA_TOLERANCE_DEG`) get an edge both ways, unless an edge
    joins them already. That is how people cross a plaza: straight, not around its edge.

    Returns
    -------
    int
        The number of crossings added (each counted once, not per direction).
    """
    added = 0
    for area in areas:
        entrances = [
            n for n in area.ring
            if n in G and any(d.get("osmid") not in area.ways for _, _, d in G.edges(n, data=True))
        ]
        if len(entrances) < 2:
            continue
        xy = np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in entrances], dtype=float)
        i, j = np.triu_indices(len(entrances), k=1)
        segments = shapely.linestrings(np.stack([xy[i], xy[j]], axis=1))
        inside = shapely.covers(area.polygon.buffer(_AREA_TOLERANCE_DEG), segments)
        length = ox.distance.great_circle(xy[i, 1], xy[i, 0], xy[j, 1], xy[j, 0])
        attrs = {"osmid": area.osmid, "highway": area.highway, "name": area.name, "area": "yes",
                 "across": True, "elevated": False}
        for a, b, ok, d in zip(i.tolist(), j.tolist(), inside.tolist(), length.tolist(),
                               strict=True):
            u, v = entrances[a], entrances[b]
            if not ok or G.has_edge(u, v):
                continue
            G.add_edge(u, v, reversed=False, length=max(float(d), _MIN_WEIGHT_M), **attrs)
            G.add_edge(v, u, reversed=True, length=max(float(d), _MIN_WEIGHT_M), **attrs)
            added += 1
    return added


def graph_from_lines(
    lines: gpd.GeoDataFrame, *, areas: gpd.GeoDataFrame | None = None
) -> nx.MultiDiGraph:
    """Build an unsimplified walking graph from line geometries that share exact vertices.

    A GDAL ``lines`` layer keeps no node topology, but ways that meet share an OSM node and so
    an identical coordinate; every vertex becomes a node and every segment an edge, walkable in
    both directions. Joining only at way ends would lose most of the network. Pedestrian areas
    add their rings as walkable edges and straight crossings between the ways that meet them
    (see :func:`walkable_areas`). Every edge says whether its way is ``elevated``
    (:func:`is_elevated`, from ``other_tags`` and any :data:`LEVEL_TAGS` columns).

    Parameters
    ----------
    lines
        Walkable ways (WGS84 LineStrings) with ``osm_id``, ``highway`` and ``name``; GDAL's
        ``other_tags`` if there is one.
    areas
        Pedestrian areas (WGS84 polygons) with ``osm_id``, ``highway`` and ``name``, as
        :func:`walkable_areas` gives them.
    """
    if lines.empty:
        msg = "no walkable ways in the data"
        raise OSMDataError(msg)
    xy_l, way = shapely.get_coordinates(lines.geometry.to_numpy(), return_index=True)
    n_lines = len(lines)
    if areas is not None and len(areas):
        parts, part_of = shapely.get_parts(areas.geometry.to_numpy(), return_index=True)
        rings = [shapely.get_exterior_ring(parts)]
        ring_of = [part_of]
        n_holes = shapely.get_num_interior_rings(parts)
        for k in range(int(n_holes.max(initial=0))):
            has = np.flatnonzero(n_holes > k)
            rings.append(shapely.get_interior_ring(parts[has], k))
            ring_of.append(part_of[has])
        all_rings = np.concatenate(rings)
        owner = np.concatenate(ring_of)
        xy_a, ring_idx = shapely.get_coordinates(all_rings, return_index=True)
        # Rings count as ways after the lines (way index n_lines + area row).
        xy = np.concatenate([xy_l, xy_a])
        way = np.concatenate([way, n_lines + owner[ring_idx]])
        # Consecutive vertices form a segment only within one line or one ring.
        seq = np.concatenate([np.full(len(xy_l), -1, np.int64), ring_idx])
    else:
        xy, seq = xy_l, np.full(len(xy_l), -1, np.int64)
    uniq, node = np.unique(xy, axis=0, return_inverse=True)
    node = node.ravel()
    same = (way[1:] == way[:-1]) & (seq[1:] == seq[:-1])
    u, v, w = node[:-1][same], node[1:][same], way[:-1][same]
    keep = u != v
    u, v, w = u[keep], v[keep], w[keep]
    length = ox.distance.great_circle(uniq[u, 1], uniq[u, 0], uniq[v, 1], uniq[v, 0])

    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_nodes_from((int(i), {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(uniq))
    osm_ids = lines["osm_id"].astype("int64").to_numpy()
    highways = lines["highway"].to_numpy()
    names = lines["name"].fillna("").to_numpy()
    elevated = _lines_elevated(lines)
    if areas is not None and len(areas):
        osm_ids = np.concatenate([osm_ids, areas["osm_id"].astype("int64").to_numpy()])
        highways = np.concatenate([highways, areas["highway"].to_numpy()])
        names = np.concatenate([names, areas["name"].fillna("").to_numpy()])
        elevated = np.concatenate([elevated, np.zeros(len(areas), bool)])
    for a, b, i, d in zip(u.tolist(), v.tolist(), w.tolist(), length.tolist(), strict=True):
        attrs = {"osmid": int(osm_ids[i]), "highway": highways[i], "name": names[i], "length": d,
                 "elevated": bool(elevated[i])}
        if i >= n_lines:
            attrs["area"] = "yes"
        G.add_edge(a, b, reversed=False, **attrs)
        G.add_edge(b, a, reversed=True, **attrs)
    if areas is not None and len(areas):
        found = []
        for r in range(len(areas)):
            ring_nodes = node[len(xy_l):][owner[ring_idx] == r]
            found.append(_Area(
                osmid=int(osm_ids[n_lines + r]), highway=str(highways[n_lines + r]),
                name=str(names[n_lines + r]), polygon=areas.geometry.iloc[r],
                ring=tuple(dict.fromkeys(int(n) for n in ring_nodes)),
                ways=frozenset({int(osm_ids[n_lines + r])}),
            ))
        _add_area_crossings(G, found)
    G.remove_nodes_from(list(nx.isolates(G)))
    return G


def _lines_elevated(lines: gpd.GeoDataFrame) -> np.ndarray:
    """:func:`is_elevated` for each row of a lines layer (``other_tags`` and level columns)."""
    if "other_tags" in lines:
        tags = [parse_other_tags(t) for t in lines["other_tags"]]
    else:
        tags = [{} for _ in range(len(lines))]
    for key in LEVEL_TAGS:
        if key in lines:
            for t, value in zip(tags, lines[key], strict=True):
                if _tag({key: value}, key):
                    t[key] = value
    return np.fromiter((is_elevated(t) for t in tags), dtype=bool, count=len(tags))


def _shown(value: str, limit: int = 40) -> str:
    """Quote a value from a file for a one-line message, cut if long."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class _OSMXMLCheck:
    """Expat handlers that refuse what osmnx's OSM XML readers should never be handed."""

    def __init__(self, path: Path, parser: Any) -> None:
        self.path, self.parser = path, parser
        self.stack: list[str] = []
        self.root = False
        self.element = ""  # e.g. "way 12", for messages
        self.way = 0
        self.ways = 0
        self.nodes: set[int] = set()
        self.first_way_of_ref: dict[int, int] = {}

    def refuse(self, what: str) -> None:
        msg = f"{self.path}: line {self.parser.CurrentLineNumber}: {what}"
        raise OSMDataError(msg)

    def xml_decl(self, version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            self.refuse(f"declares encoding {_shown(encoding)}; OSM XML is read as UTF-8 only")

    def doctype(self, name: str, sysid: str | None, pubid: str | None, internal: int) -> None:
        if name != "osm":
            msg = f"{self.path}: not OSM XML (root element <{name}>, expected <osm>)"
            raise OSMDataError(msg)
        self.refuse("has a document type declaration (<!DOCTYPE>), which OSM XML never has; "
                    "refused so that no entity is expanded or fetched")

    def entity(self, *args: object) -> None:
        self.refuse("declares an XML entity; refused")

    def external_entity(self, *args: object) -> int:
        self.refuse("refers to an external entity; refused")
        return 0

    def integer(self, attrs: dict[str, str], key: str, *, required: bool) -> int:
        value = attrs.get(key)
        if value is None:
            if required:
                self.refuse(f"<{self.stack[-1]}> without {key}")
            return 0
        if not _OSM_INT.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
            self.refuse(f"{self.element}: {key}={_shown(value)} is not a 64-bit integer")
        return int(value)

    def degrees(self, attrs: dict[str, str], key: str, bound: float) -> None:
        value = attrs.get(key)
        if value is None:
            self.refuse(f"{self.element} has no {key}")
            return
        number = float(value) if _OSM_DECIMAL.fullmatch(value) else math.nan
        if not -bound <= number <= bound:  # also refuses NaN and infinities
            self.refuse(f"{self.element} has {key}={_shown(value)}, not a number of degrees "
                        f"from -{bound:g} to {bound:g}")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        depth = len(self.stack)
        self.stack.append(name)
        if depth == 0:
            if name != "osm":
                msg = f"{self.path}: not OSM XML (root element <{name}>, expected <osm>)"
                raise OSMDataError(msg)
            self.root = True
            return
        parent = self.stack[-2]
        if name in _OSM_ELEMENTS:
            if depth != 1:
                self.refuse(f"<{name}> inside <{parent}>")
            self.element = f"<{name}>"
            osm_id = self.integer(attrs, "id", required=True)
            self.element = f"{name} {osm_id}"
            for key in _OSM_INT_ATTRS[1:]:
                self.integer(attrs, key, required=False)
            if name == "node":
                self.nodes.add(osm_id)
                self.degrees(attrs, "lat", 90.0)
                self.degrees(attrs, "lon", 180.0)
            self.way = osm_id if name == "way" else 0
            self.ways += name == "way"
        elif name in _OSM_PARENTS:
            if parent not in _OSM_PARENTS[name]:
                inside = " or ".join(f"<{p}>" for p in sorted(_OSM_PARENTS[name]))
                self.refuse(f"<{name}> inside <{parent}>, expected inside {inside}")
            if name == "tag" and ("k" not in attrs or "v" not in attrs):
                self.refuse(f"{self.element}: <tag> without k and v")
            elif name == "nd":
                self.first_way_of_ref.setdefault(self.integer(attrs, "ref", required=True),
                                                 self.way)
            elif name == "member":
                self.integer(attrs, "ref", required=False)

    def end(self, name: str) -> None:
        self.stack.pop()


def require_data_file(path: Path) -> None:
    """Refuse a path that is no file, or an empty one, with a one-line reason.

    Raises
    ------
    OSMDataError
        Naming the path.
    """
    if not path.is_file():
        msg = f"{path}: no such file"
        raise OSMDataError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: the file is empty"
        raise OSMDataError(msg)


def check_osm_xml(path: str | Path) -> None:
    """Read an OSM XML file once, streaming, and refuse what should not reach osmnx's readers.

    The file must be UTF-8 XML with an ``<osm>`` root and no document type declaration (so no
    entity is ever declared, expanded or fetched: no billion laughs, no external entities); every
    node, way and relation needs an integer ``id`` (64-bit), every node a finite ``lat`` in
    [-90, 90] and ``lon`` in [-180, 180]; tags, way nodes and members must sit in their element
    with their keys, and every node a way refers to must be in the file.

    Raises
    ------
    OSMDataError
        Naming the file, the line and what is wrong.
    """
    path = Path(path)
    require_data_file(path)
    parser = expat.ParserCreate(encoding="UTF-8")  # whatever the file declares
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    check = _OSMXMLCheck(path, parser)
    parser.XmlDeclHandler = check.xml_decl
    parser.StartDoctypeDeclHandler = check.doctype
    parser.EntityDeclHandler = check.entity
    parser.UnparsedEntityDeclHandler = check.entity
    parser.ExternalEntityRefHandler = check.external_entity
    parser.StartElementHandler = check.start
    parser.EndElementHandler = check.end
    utf8 = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_XML_CHUNK):
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError as e:
                    msg = f"{path}: not UTF-8 text (byte {offset + e.start:,}); OSM XML is UTF-8"
                    raise OSMDataError(msg) from e
                parser.Parse(chunk, False)
                offset += len(chunk)
            parser.Parse(b"", True)
    except expat.ExpatError as e:
        what = "broken or truncated OSM XML" if check.root else "not XML"
        msg = f"{path}: {what} ({expat.ErrorString(e.code)}: line {e.lineno}, column {e.offset})"
        raise OSMDataError(msg) from e
    if not check.ways:
        msg = f"{path}: no walkable ways in the file (no <way> at all)"
        raise OSMDataError(msg)
    missing = check.first_way_of_ref.keys() - check.nodes
    if missing:
        ref = min(missing)
        msg = (
            f"{path}: way {check.first_way_of_ref[ref]} refers to node {ref}, which is not in the "
            f"file ({len(missing):,} such nodes); export complete ways, not a clipped extract"
        )
        raise OSMDataError(msg)


def span_km(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
    """Return the width and height in km of a WGS84 box (at its middle latitude)."""
    mid = (y0 + y1) / 2
    return ((x1 - x0) * _KM_PER_DEGREE * math.cos(math.radians(mid)),
            (y1 - y0) * _KM_PER_DEGREE)


def _check_extent(path: Path, G: nx.MultiDiGraph, *, max_span_km: float) -> None:
    """Refuse walkable ways spread wider than a district, or beyond the UTM latitudes."""
    xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)], dtype=float)
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    mid = (y0 + y1) / 2
    if not _UTM_LATITUDES[0] <= mid <= _UTM_LATITUDES[1]:
        msg = (f"{path}: the walkable ways lie at latitude {mid:.2f}, outside the "
               f"{_UTM_LATITUDES[0]:g}..{_UTM_LATITUDES[1]:g} that a UTM zone covers")
        raise OSMDataError(msg)
    wide, high = span_km(x0, y0, x1, y1)
    if max(wide, high) > max_span_km:
        msg = (f"{path}: the walkable ways span {wide:,.0f} km x {high:,.0f} km; an import is "
               f"limited to {max_span_km:g} km a side (is a node's lon/lat wrong?)")
        raise OSMDataError(msg)


class _AreaRelations:
    """Expat handlers that collect the multipolygon relations that are pedestrian areas."""

    def __init__(self) -> None:
        self.found: list[tuple[int, dict[str, str], list[tuple[int, str]]]] = []
        self.relation = 0
        self.tags: dict[str, str] = {}
        self.members: list[tuple[int, str]] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "relation":
            self.relation, self.tags, self.members = int(attrs["id"]), {}, []
        elif self.relation and name == "tag":
            self.tags[attrs["k"]] = attrs["v"]
        elif self.relation and name == "member" and attrs.get("type") == "way" and "ref" in attrs:
            self.members.append((int(attrs["ref"]), attrs.get("role") or "outer"))

    def end(self, name: str) -> None:
        if name == "relation":
            if is_pedestrian_area(self.tags):
                self.found.append((self.relation, self.tags, self.members))
            self.relation = 0


def _area_relations(path: Path) -> list[tuple[int, dict[str, str], list[tuple[int, str]]]]:
    """Read a checked OSM XML file's pedestrian-area multipolygons: id, tags, (way, role)."""
    parser = expat.ParserCreate(encoding="UTF-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    collect = _AreaRelations()
    parser.StartElementHandler = collect.start
    parser.EndElementHandler = collect.end
    with path.open("rb") as f:
        parser.ParseFile(f)
    return collect.found


def _pedestrian_areas(path: Path, G: nx.MultiDiGraph) -> list[_Area]:
    """Find a file's pedestrian areas (closed ways and multipolygons) in its unfiltered graph.

    Polygons are formed from the edges of the ways that draw them (so a relation's ring may be
    split among several ways); relation members that are not walkable ways themselves are
    marked as the area's outline (``highway`` and ``name`` of the relation, ``area=yes``).
    """
    way_areas = {d["osmid"]: d for _, _, d in G.edges(data=True) if is_pedestrian_area(d)}
    relations = _area_relations(path)
    wanted = set(way_areas) | {w for _, _, members in relations for w, _ in members}
    if not wanted:
        return []
    segments: dict[int, set[tuple[int, int]]] = {w: set() for w in wanted}
    for u, v, d in G.edges(data=True):
        if d.get("osmid") in segments:
            segments[d["osmid"]].add((min(u, v), max(u, v)))

    def faces(ways: list[int]) -> shapely.Geometry:
        pairs = [pair for w in ways for pair in segments.get(w, ())]
        if not pairs:
            return shapely.Polygon()
        xy = np.array([[(G.nodes[n]["x"], G.nodes[n]["y"]) for n in pair] for pair in pairs])
        return shapely.union_all(shapely.get_parts(shapely.polygonize(shapely.linestrings(xy))))

    def ring(ways: list[int]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(n for w in ways for pair in sorted(segments[w]) for n in pair))

    areas = [
        _Area(osmid=int(w), highway=str(d["highway"]), name=_flatten(d.get("name")),
              polygon=faces([w]), ring=ring([w]), ways=frozenset({w}))
        for w, d in way_areas.items()
    ]
    for rel, tags, members in relations:
        outer = [w for w, role in members if role != "inner"]
        inner = [w for w, role in members if role == "inner"]
        polygon = shapely.difference(faces(outer), faces(inner))
        ways = [w for w, _ in members if segments.get(w)]
        if polygon.is_empty:  # its ways are not all in the file, or do not close
            continue
        members_of = set(ways)
        for _, _, d in G.edges(data=True):
            if d.get("osmid") in members_of and not is_walkable(d):
                d.update(highway=tags["highway"], name=tags.get("name", ""), area="yes",
                         outline_of=rel)
        areas.append(_Area(osmid=rel, highway=tags["highway"], name=tags.get("name", ""),
                           polygon=polygon, ring=ring(ways), ways=frozenset(ways)))
    return [a for a in areas if not a.polygon.is_empty]


def graph_from_osm_xml(
    path: str | Path, *, max_span_km: float = MAX_IMPORT_SPAN_KM
) -> nx.MultiDiGraph:
    """Read an OSM XML file into an unsimplified walking graph (walk filter applied).

    ``max_span_km`` bounds the walkable ways' box on each side: a district, not a province
    (an import cut by a county's outline passes the outline's own span, which bounds it then).

    Ways pass :func:`is_walkable`; pedestrian areas (:func:`is_pedestrian_area`: closed ways,
    and multipolygon relations whose member ways the file holds) are walked along their rings
    and straight across between the ways that meet them. Every edge says whether its way is
    ``elevated`` (:func:`is_elevated`).

    Raises
    ------
    OSMDataError
        If the file is missing, empty, not OSM XML, truncated, or refused by
        :func:`check_osm_xml`; or if it has no walkable ways, or they span more than
        ``max_span_km`` or lie where no UTM zone applies.
    """
    path = Path(path)
    check_osm_xml(path)  # osmnx's own XML readers are handed only a file that passed this
    old_tags = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = sorted({*old_tags, *_WALK_TAGS, *LEVEL_TAGS})
    try:
        G = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
    except Exception as e:  # osmnx raises a variety of errors for odd inputs
        msg = f"{path}: cannot read OSM data ({type(e).__name__}: {e})"
        raise OSMDataError(msg) from e
    finally:
        ox.settings.useful_tags_way = old_tags

    areas = _pedestrian_areas(path, G)
    outline = {w for a in areas for w in a.ways}
    drop = [
        (u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
        if not is_walkable(d) and d.get("osmid") not in outline
    ]
    G.remove_edges_from(drop)
    for _, _, d in G.edges(data=True):
        d["elevated"] = is_elevated(d)
    _add_area_crossings(G, areas)
    G.remove_nodes_from(list(nx.isolates(G)))
    if G.number_of_edges() == 0:
        msg = f"{path}: no walkable ways in the file"
        raise OSMDataError(msg)
    _check_extent(path, G, max_span_km=max_span_km)
    return G


def simplify_walk_graph(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Keep the largest connected component, simplify with osmnx and measure edges in metres.

    A bridge's or tunnel's ends stay nodes (osmnx ``edge_attrs_differ``), so each simplified
    edge is wholly ``elevated`` or wholly on the ground.
    """
    G = ox.truncate.largest_component(G, strongly=False)
    if "simplified" not in G.graph:
        G = ox.simplify_graph(G, edge_attrs_differ=["elevated"])
    return G


@dataclass(frozen=True)
class EdgePositions:
    """Positions attached to the nearest point of the nearest street edge.

    ``edge`` indexes :attr:`WalkNetwork.edges`; ``offset_m`` is measured along the edge from its
    ``u`` node; ``access_m`` is the straight walk from the position onto the street.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray

    def __len__(self) -> int:
        return len(self.edge)


@dataclass
class WalkNetwork:
    """An undirected walking network held both as GeoDataFrames and as CSR arrays.

    Build it with :func:`walk_network`; ``nodes`` is indexed by ``osmid`` and ``edges`` has one
    row per street segment with ``u``, ``v``, ``key``, ``length`` (metres), ``elevated`` (a
    bridge or tunnel, see :func:`is_elevated`; absent means none) and a WGS84 geometry.
    """

    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    crs_metric: CRS
    node_ids: np.ndarray = field(init=False)
    u: np.ndarray = field(init=False)
    v: np.ndarray = field(init=False)
    length: np.ndarray = field(init=False)
    csr: sparse.csr_matrix = field(init=False)

    def __post_init__(self) -> None:
        self.node_ids = self.nodes.index.to_numpy(dtype=np.int64)
        pos = pd.Index(self.node_ids)
        self.u = pos.get_indexer(self.edges["u"].to_numpy())
        self.v = pos.get_indexer(self.edges["v"].to_numpy())
        self.length = np.maximum(self.edges["length"].to_numpy(dtype=float), _MIN_WEIGHT_M)
        n = len(self.node_ids)
        # Parallel edges: the shortest one is the walk.
        pairs = pd.DataFrame(
            {
                "a": np.r_[self.u, self.v],
                "b": np.r_[self.v, self.u],
                "w": np.r_[self.length, self.length],
            }
        )
        pairs = pairs[pairs.a != pairs.b].groupby(["a", "b"], sort=True)["w"].min().reset_index()
        self.csr = sparse.csr_matrix(
            (pairs.w.to_numpy(), (pairs.a.to_numpy(), pairs.b.to_numpy())), shape=(n, n)
        )

    @cached_property
    def node_index(self) -> pd.Index:
        """Node ids as a pandas index named ``osmid`` (shared by every result, never modified)."""
        return pd.Index(self.node_ids, name="osmid")

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @cached_property
    def _to_metric(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.crs_metric, always_xy=True)

    @cached_property
    def _edge_geoms_metric(self) -> np.ndarray:
        geoms = self.edges.geometry.to_crs(self.crs_metric).to_numpy()
        first = shapely.get_point(geoms, 0)
        nodes_m = gpd.GeoSeries(self.nodes.geometry, crs="EPSG:4326").to_crs(self.crs_metric)
        node_pts = nodes_m.to_numpy()
        starts_at_v = shapely.distance(first, node_pts[self.v]) < shapely.distance(
            first, node_pts[self.u]
        )
        # Orient every geometry from u to v so offsets read from u.
        geoms = np.where(starts_at_v, shapely.reverse(geoms), geoms)
        return np.asarray(geoms)

    @property
    def edges_metric(self) -> np.ndarray:
        """Edge geometries in the metric CRS, each running from its ``u`` node to its ``v`` node."""
        return self._edge_geoms_metric

    @cached_property
    def elevated(self) -> np.ndarray:
        """Per edge, whether it is a bridge or a tunnel (:func:`is_elevated`)."""
        if "elevated" not in self.edges:
            return np.zeros(len(self.edges), bool)
        return self.edges["elevated"].map(_any_true).to_numpy(dtype=bool)

    @cached_property
    def _ground(self) -> _EdgeSubset:
        return _EdgeSubset(self._edge_geoms_metric, np.flatnonzero(~self.elevated))

    @cached_property
    def _raised(self) -> _EdgeSubset:
        return _EdgeSubset(self._edge_geoms_metric, np.flatnonzero(self.elevated))

    @cached_property
    def bounds_metric(self) -> tuple[float, float, float, float]:
        """Bounding box of the network in its metric CRS."""
        b = shapely.total_bounds(self._edge_geoms_metric)
        return float(b[0]), float(b[1]), float(b[2]), float(b[3])

    def to_metric(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Project WGS84 coordinates to the network's metric CRS as shapely points."""
        x, y = self._to_metric.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return shapely.points(x, y)

    def attach(
        self, lon: np.ndarray, lat: np.ndarray, *, max_access_m: float | None = None
    ) -> EdgePositions:
        """Attach WGS84 positions to the nearest point on the nearest street edge.

        Bridges and tunnels (:attr:`elevated` edges) are left out: nobody steps onto one from
        beside it. A position takes the nearest of them only when no other street is within
        ``max_access_m`` (else :data:`MAX_ACCESS_M`), so none is left unattached.

        Parameters
        ----------
        lon, lat
            Position coordinates in degrees.
        max_access_m
            Refuse positions farther than this from any street (bridges and tunnels included).

        Raises
        ------
        OutOfAreaError
            If a position is farther than ``max_access_m`` from the network.
        """
        x, y = self._to_metric.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        # Far from the district's metric zone the projection has no answer (inf): such a point
        # is as far from every street as can be, not a crash.
        far = ~(np.isfinite(x) & np.isfinite(y))
        x, y = np.where(far, 0.0, x), np.where(far, 0.0, y)
        edge, frac, access = self._ground.nearest(x, y)
        reach = MAX_ACCESS_M if max_access_m is None else max_access_m
        alone = np.flatnonzero(access > reach)  # no ground street within reach
        if len(alone) and len(self._raised.ids):
            edge2, frac2, access2 = self._raised.nearest(x[alone], y[alone])
            closer = access2 < access[alone]
            lifted = alone[closer]
            edge[lifted], frac[lifted], access[lifted] = (
                edge2[closer], frac2[closer], access2[closer]
            )
        access = np.where(far, np.inf, access)
        if max_access_m is not None and len(access) and np.any(access > max_access_m):
            bad = int(np.argmax(access))
            away = f"{access[bad]:.0f} 米" if np.isfinite(access[bad]) else "极远"
            msg = (
                f"位置 ({float(np.atleast_1d(lon)[bad]):.6f}, "
                f"{float(np.atleast_1d(lat)[bad]):.6f}) 距最近的步行道路{away}，"
                f"超出服务范围（{max_access_m:.0f} 米）"
            )
            raise OutOfAreaError(msg)
        return EdgePositions(edge, frac * self.length[edge], access)

    def attach_near(
        self,
        lon: np.ndarray,
        lat: np.ndarray,
        *,
        snap_m: float = DEFAULT_SNAP_M,
        max_access_m: float | None = None,
    ) -> tuple[EdgePositions, np.ndarray]:
        """Attach WGS84 points to every street edge within ``snap_m`` beyond their nearest one.

        As routing engines snap, a point may start its walk on any street a short detour
        away: its nearest edge (exactly as :meth:`attach`) and every other edge at most
        ``snap_m`` farther from the point than that one, each at its own nearest point with
        its own access walk. A walk to the point then takes the best of them
        (:func:`geo.walk.best_of`). With ``snap_m=0`` this is :meth:`attach`. Bridges and
        tunnels are not among the others, unless :meth:`attach` had to take one (no other
        street within reach): then every edge counts.

        Parameters
        ----------
        lon, lat
            Point coordinates in degrees.
        snap_m
            How much farther than the nearest street another street may be.
        max_access_m
            Refuse points whose nearest street is farther than this.

        Returns
        -------
        positions, owner
            One row per (point, edge) pair, grouped by point with its nearest edge first;
            ``owner`` is the index of the point each row attaches.

        Raises
        ------
        OutOfAreaError
            If a point's nearest street is farther than ``max_access_m``.
        """
        nearest = self.attach(lon, lat, max_access_m=max_access_m)
        n = len(nearest)
        if not snap_m > 0 or n == 0:
            return nearest, np.arange(n)
        x, y = self._to_metric.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        pts = shapely.points(np.atleast_1d(x), np.atleast_1d(y))
        bound = nearest.access_m + snap_m
        ok = np.flatnonzero(np.isfinite(bound))
        geoms = self._edge_geoms_metric
        pi, ei = self._ground.within(pts[ok], bound[ok])
        lifted = ok[self.elevated[nearest.edge[ok]]]
        pi2, ei2 = self._raised.within(pts[lifted], bound[lifted])
        pi, ei = np.concatenate([ok[pi], lifted[pi2]]), np.concatenate([ei, ei2])
        other = ei != nearest.edge[pi]
        pi, ei = pi[other], ei[other]
        access = shapely.distance(pts[pi], geoms[ei])
        frac = shapely.line_locate_point(geoms[ei], pts[pi], normalized=True)
        edge = np.concatenate([nearest.edge, ei])
        offset = np.concatenate([nearest.offset_m, np.clip(frac, 0.0, 1.0) * self.length[ei]])
        access = np.concatenate([nearest.access_m, access])
        owner = np.concatenate([np.arange(n), pi])
        order = np.argsort(owner, kind="stable")
        return EdgePositions(edge[order], offset[order], access[order]), owner[order]

    def attach_points(self, points: gpd.GeoSeries | gpd.GeoDataFrame) -> EdgePositions:
        """Attach point geometries (any CRS; polygons use their representative point)."""
        geom = points.geometry.to_crs("EPSG:4326")
        pts = shapely.point_on_surface(geom.to_numpy())
        return self.attach(shapely.get_x(pts), shapely.get_y(pts))


class _EdgeSubset:
    """A :class:`_SegmentIndex` over some edges, answering with the network's edge numbers."""

    def __init__(self, geoms: np.ndarray, ids: np.ndarray) -> None:
        self.ids = ids
        self.index = _SegmentIndex(geoms[ids]) if len(ids) else None

    def nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each point's nearest edge of the subset, fraction along it, distance (inf: none)."""
        if self.index is None:
            return np.zeros(len(x), np.int64), np.zeros(len(x)), np.full(len(x), np.inf)
        edge, frac, dist = self.index.nearest(x, y)
        return self.ids[edge], frac, dist

    def within(self, pts: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (point, edge) pair of the subset at most ``distance`` (per point) apart."""
        if self.index is None or len(pts) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        pi, ei = self.index.fallback.query(pts, predicate="dwithin", distance=distance)
        return pi, self.ids[ei]


class _SegmentIndex:
    """Exact nearest street segment for many points at once.

    Each straight segment is sampled every ``spacing`` metres into a KD-tree. The nearest sample
    lies within ``spacing / 2`` of the true nearest segment's closest point, so the candidates of
    the ``k`` nearest samples hold the answer whenever the k-th sample is farther than the best
    candidate plus half a spacing; the other points look wider, then fall back to an STRtree.
    """

    def __init__(self, geoms: np.ndarray, *, spacing: float = 10.0, k: int = 16) -> None:
        xy, owner = shapely.get_coordinates(geoms, return_index=True)
        same = owner[1:] == owner[:-1]
        self.p0, self.p1 = xy[:-1][same], xy[1:][same]
        self.edge = owner[:-1][same]
        seg_len = np.hypot(*(self.p1 - self.p0).T)
        edge_len = np.bincount(self.edge, weights=seg_len, minlength=len(geoms))
        before = np.cumsum(seg_len) - seg_len
        first_of_edge = np.r_[0, np.flatnonzero(self.edge[1:] != self.edge[:-1]) + 1]
        start = np.repeat(before[first_of_edge], np.diff(np.r_[first_of_edge, len(seg_len)]))
        self.seg_len = seg_len
        self.along0 = before - start  # metres from the edge start to the segment start
        self.edge_len = np.maximum(edge_len, _MIN_WEIGHT_M)
        n_samples = np.maximum(np.ceil(seg_len / spacing).astype(np.int64), 1) + 1
        seg = np.repeat(np.arange(len(seg_len)), n_samples)
        t = (np.arange(len(seg)) - np.repeat(np.cumsum(n_samples) - n_samples, n_samples)) / (
            np.repeat(n_samples, n_samples) - 1
        )
        samples = self.p0[seg] + (self.p1[seg] - self.p0[seg]) * t[:, None]
        self.sample_seg = seg
        self.tree = cKDTree(samples)
        self.spacing, self.k = spacing, k
        self.fallback = shapely.STRtree(geoms)
        self.geoms = geoms

    def _project(self, x: np.ndarray, y: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, ...]:
        d = self.p1[seg] - self.p0[seg]
        rel_x, rel_y = x - self.p0[seg, 0], y - self.p0[seg, 1]
        denom = np.maximum(d[..., 0] ** 2 + d[..., 1] ** 2, 1e-12)
        t = np.clip((rel_x * d[..., 0] + rel_y * d[..., 1]) / denom, 0.0, 1.0)
        dist = np.hypot(rel_x - t * d[..., 0], rel_y - t * d[..., 1])
        return dist, t

    def _candidates(
        self, x: np.ndarray, y: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Best of the k nearest samples' segments, and whether that is provably the nearest."""
        k = min(k, self.tree.n)
        sample_d, sample_i = self.tree.query(np.column_stack([x, y]), k=k)
        sample_d, sample_i = sample_d.reshape(len(x), -1), sample_i.reshape(len(x), -1)
        seg = self.sample_seg[sample_i]
        dist, t = self._project(x[:, None], y[:, None], seg)
        best = np.argmin(dist, axis=1)
        rows = np.arange(len(x))
        dist_best = dist[rows, best]
        sure = (sample_d[:, -1] > dist_best + self.spacing / 2) | (k == self.tree.n)
        return seg[rows, best], t[rows, best], dist_best, sure

    def nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return each point's nearest edge, fraction along it from u, and distance."""
        if len(x) == 0:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        seg, t, dist, sure = self._candidates(x, y, self.k)
        unsure = np.flatnonzero(~sure)
        if len(unsure):  # a wider look settles nearly all the rest
            seg2, t2, dist2, sure2 = self._candidates(x[unsure], y[unsure], self.k * 4)
            seg[unsure], t[unsure], dist[unsure] = seg2, t2, dist2
            unsure = unsure[~sure2]
        edge = self.edge[seg]
        frac = (self.along0[seg] + t * self.seg_len[seg]) / self.edge_len[edge]
        if len(unsure):
            pts = shapely.points(x[unsure], y[unsure])
            (pi, ei), dd = self.fallback.query_nearest(pts, return_distance=True, all_matches=False)
            edge[unsure[pi]] = ei
            dist[unsure[pi]] = dd
            frac[unsure[pi]] = shapely.line_locate_point(self.geoms[ei], pts[pi], normalized=True)
        return edge, np.clip(frac, 0.0, 1.0), dist


def walk_network(G: nx.MultiDiGraph) -> WalkNetwork:
    """Turn a simplified osmnx graph into a :class:`WalkNetwork`."""
    Gu = ox.convert.to_undirected(G)
    nodes, edges = ox.convert.graph_to_gdfs(Gu)
    edges = edges.reset_index()
    keep = [
        c for c in ("u", "v", "key", "osmid", "highway", "name", "length", "elevated", "geometry")
        if c in edges
    ]
    edges = edges[keep].copy()
    for col in ("osmid", "highway", "name"):
        if col in edges:
            edges[col] = edges[col].map(_flatten)
    # A graph built elsewhere may lack the flag (no bridges known) or hold merged lists.
    edges["elevated"] = (
        edges["elevated"].map(_any_true).to_numpy(dtype=bool) if "elevated" in edges
        else np.zeros(len(edges), bool)
    )
    nodes = nodes[["x", "y", "geometry"]].copy()
    nodes.index.name = "osmid"
    crs_metric = edges.estimate_utm_crs()
    return WalkNetwork(nodes=nodes, edges=edges, crs_metric=crs_metric)


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(str(x) for x in value if x not in (None, ""))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)
