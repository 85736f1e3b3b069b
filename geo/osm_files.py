"""Stream OSM files (.osm, .osm.bz2, .osm.pbf) and cut a district's share out of them.

The reader is pyosmium (PyPI ``osmium``, the Python binding of libosmium, the library behind
``osmium-tool`` and osm2pgsql): it reads PBF and (compressed) XML alike, refuses XML entities,
and hands Python one object at a time, so memory depends on what is kept, not on the file.
The cut reads the file several times (each read asks libosmium only for one kind of object):

1. relations: multipolygons that are places or buildings (few), and their member ways;
2. nodes: the ids inside the area (tested in vectorised chunks against the prepared polygon),
   and place nodes (points of interest) inside it;
3. ways: those a district uses (any ``highway`` way: the walk filter of
   :func:`geo.network.graph_from_osm_xml` decides later, so PBF and XML imports agree by
   construction; places; buildings for the residents estimate) that touch a node inside,
   and the member ways of the relations they make;
4. the kept nodes, ways and relations, complete (every node of a kept way, inside or not), are
   written as OSM XML for :func:`geo.district.build_district_from_xml`.

Sets of ids are sorted numpy arrays and Python sets as big as the district's share (plus the
member ways of the file's place and building multipolygons, a few per relation), never
libosmium's dense id sets (those take about 1.6 GB once ids spread over the whole id range).
"""

from __future__ import annotations

import array
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import osmium
import shapely
from shapely.geometry.base import BaseGeometry
from tqdm.auto import tqdm

from geo._errors import OSMDataError
from geo.network import is_pedestrian_area, require_data_file
from geo.places import PLACE_KINDS, PLACE_TAGS, place_kind

#: Way keys a district uses beside places: the network (any highway; the walk filter decides
#: later) and buildings (the residents estimate, :func:`geo.demand.osm_housing`).
NETWORK_KEYS = ("highway", "area:highway")
BUILDING_KEY = "building"
#: Relation types osmnx builds polygons from.
_AREA_RELATIONS = frozenset({"multipolygon", "boundary"})
_PLACE_KEYS = tuple(PLACE_TAGS)
_CHUNK = 1 << 18
_COORD = 1e-7  # libosmium stores degrees as integers of 1e-7°
#: Default Overpass API endpoint (the main public instance).
DEFAULT_OVERPASS_URL = "https://overpass-api.de/api/interpreter"
_USER_AGENT = "practice-circle (15-minute practice service circle; OSM import)"
_REMARK = re.compile(rb"<remark>(.{0,300}?)</remark>", re.DOTALL)


@dataclass
class CutStats:
    """What a cut read and kept."""

    nodes_read: int = 0
    nodes_inside: int = 0
    ways_read: int = 0
    relations_read: int = 0
    nodes_written: int = 0
    ways_written: int = 0
    highway_ways: int = 0
    relations_written: int = 0
    seconds: float = 0.0
    #: Seconds each pass took, in order.
    passes: dict[str, float] = field(default_factory=dict)


def osm_file_kind(path: str | Path) -> str:
    """Return ``"pbf"``, ``"xml.bz2"``, ``"xml.gz"`` or ``"xml"`` for an OSM file name.

    Names ending ``.pbf`` are PBF, ``.bz2`` and ``.gz`` compressed XML; any other name is read
    as OSM XML (the openstreetmap.org export is called ``map``).
    """
    name = Path(path).name.lower()
    if name.endswith(".pbf"):
        return "pbf"
    for ext in ("bz2", "gz"):
        if name.endswith(f".{ext}"):
            return f"xml.{ext}"
    return "xml"


_OSMIUM_FORMAT = {"pbf": "pbf", "xml": "osm", "xml.bz2": "osm.bz2", "xml.gz": "osm.gz"}


def _objects(path: Path, entities: Any, *filters: Any) -> Iterable[Any]:
    source = osmium.io.File(str(path), _OSMIUM_FORMAT[osm_file_kind(path)])
    fp = osmium.FileProcessor(source, entities)
    for f in filters:
        fp = fp.with_filter(f)
    return fp


def _wanted_way(tags: Any) -> bool:
    if any(k in tags for k in NETWORK_KEYS) or BUILDING_KEY in tags:
        return True
    return place_kind(tags) is not None


def _place_or_building(tags: Any) -> bool:
    return BUILDING_KEY in tags or place_kind(tags) is not None


class _Area:
    """Tell which points lie in the cut's area (everything when there is none)."""

    def __init__(self, area: BaseGeometry | None) -> None:
        self.area = area
        if area is not None:
            shapely.prepare(area)
            x0, y0, x1, y1 = area.bounds
            self.box = (x0 / _COORD, y0 / _COORD, x1 / _COORD, y1 / _COORD)

    def inside(self, x: npt.NDArray[np.int64], y: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        if self.area is None:
            return np.ones(len(x), dtype=bool)
        x0, y0, x1, y1 = self.box
        out = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        hit = np.flatnonzero(out)
        if len(hit):
            out[hit] = shapely.contains_xy(self.area, x[hit] * _COORD, y[hit] * _COORD)
        return out


def _inside_nodes(path: Path, area: _Area, stats: CutStats) -> npt.NDArray[np.int64]:
    """Pass over the nodes: the sorted ids of those inside the area."""
    ids, xs, ys = array.array("q"), array.array("q"), array.array("q")
    found: list[npt.NDArray[np.int64]] = []

    def flush() -> None:
        i = np.frombuffer(ids, dtype=np.int64).copy()
        x = np.frombuffer(xs, dtype=np.int64).copy()
        y = np.frombuffer(ys, dtype=np.int64).copy()
        found.append(i[area.inside(x, y)].copy())
        stats.nodes_read += len(i)
        del ids[:], xs[:], ys[:]

    for n in _objects(path, osmium.osm.NODE):
        loc = n.location  # an invalid location has huge x, y: never inside
        ids.append(n.id)
        xs.append(loc.x)
        ys.append(loc.y)
        if len(ids) >= _CHUNK:
            flush()
    flush()
    return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)


def _place_nodes(path: Path, area: _Area) -> list[int]:
    """Pass over the tagged nodes only (filtered in C++): places inside the area."""
    ids, xs, ys = [], [], []
    for n in _objects(path, osmium.osm.NODE, osmium.filter.KeyFilter(*_PLACE_KEYS)):
        if place_kind(n.tags) is not None:
            ids.append(n.id)
            xs.append(n.location.x)
            ys.append(n.location.y)
    keep = area.inside(np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.int64))
    return [i for i, k in zip(ids, keep.tolist(), strict=True) if k]


class _WayBatch:
    """Ways gathered in chunks; which of them touch a node inside, tested with numpy."""

    def __init__(self, inside: npt.NDArray[np.int64] | None) -> None:
        self.inside = inside
        self.ids = array.array("q")
        self.sizes = array.array("q")
        self.refs = array.array("q")
        self.wanted = array.array("b")

    def add(self, way_id: int, refs: list[int], wanted: bool) -> None:
        if not refs:  # a way of no node has no place to be
            return
        self.ids.append(way_id)
        self.sizes.append(len(refs))
        self.refs.extend(refs)
        self.wanted.append(wanted)

    def touching(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], list[
            npt.NDArray[np.int64]]]:
        """Return the ways touching the area, whether each is wanted by its tags, their refs."""
        ids = np.frombuffer(self.ids, dtype=np.int64).copy()
        sizes = np.frombuffer(self.sizes, dtype=np.int64).copy()
        refs = np.frombuffer(self.refs, dtype=np.int64).copy()
        wanted = np.frombuffer(self.wanted, dtype=np.int8).astype(bool)
        del self.ids[:], self.sizes[:], self.refs[:], self.wanted[:]
        if not len(ids):
            return ids, wanted, []
        if self.inside is None:
            hit = np.ones(len(ids), dtype=bool)
        else:
            pos = np.searchsorted(self.inside, refs)
            pos[pos == len(self.inside)] = 0
            ref_in = self.inside[pos] == refs if len(self.inside) else np.zeros(len(refs), bool)
            # Every way has a node (see add), so no segment of reduceat is empty.
            starts = np.r_[0, np.cumsum(sizes)[:-1]]
            hit = np.logical_or.reduceat(ref_in, starts) if len(refs) else np.zeros(0, bool)
        bounds = np.r_[0, np.cumsum(sizes)]
        parts = [refs[bounds[i]:bounds[i + 1]] for i in np.flatnonzero(hit)]
        return ids[hit], wanted[hit], parts


def cut_osm(
    src: str | Path, dst: str | Path, *, area: BaseGeometry | None = None, progress: bool = False
) -> CutStats:
    """Write the part of an OSM file a district needs to an OSM XML file, streaming.

    Kept: every way with a ``highway`` (or ``area:highway``) tag, every building and every
    place (:data:`geo.places.PLACE_KINDS`) way that has a node in ``area``, with all its nodes;
    multipolygon (or boundary) relations that are places or buildings with a member way kept
    that way, with all their member ways; place nodes in ``area``. Nothing else is written.

    Parameters
    ----------
    src
        An ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` file (see :func:`osm_file_kind`).
    dst
        The OSM XML file to write (replaced if it exists).
    area
        WGS84 polygon to cut by (the district outline plus its margin); ``None`` keeps the
        whole file's network, places and buildings.
    progress
        Show a progress bar (one step per pass).

    Raises
    ------
    OSMDataError
        If the file is missing or empty, or libosmium cannot read it.
    """
    src, dst = Path(src), Path(dst)
    require_data_file(src)
    stats = CutStats()
    started = time.perf_counter()
    bar = tqdm(total=5, desc=f"reading {src.name}", disable=not progress, unit="pass",
               leave=False)
    try:
        _cut(src, dst, _Area(area), stats, bar)
    except RuntimeError as e:  # libosmium's errors: unreadable PBF, broken XML, entities…
        dst.unlink(missing_ok=True)
        msg = f"{src}: cannot read OSM data ({e})"
        raise OSMDataError(msg) from e
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - started
    return stats


def _cut(src: Path, dst: Path, area: _Area, stats: CutStats, bar: Any) -> None:
    clock = [time.perf_counter()]

    def step(label: str) -> None:
        now = time.perf_counter()
        stats.passes[label] = now - clock[0]
        clock[0] = now
        bar.set_postfix_str(label)
        bar.update(1)

    # 1. Relations that are places, buildings or pedestrian plazas (few; filtered by key in
    # C++). Plazas mapped as multipolygons are walked along and across (geo/network.py), so a
    # PBF import must keep them as the XML import does.
    candidates: dict[int, list[int]] = {}
    keys = (*_PLACE_KEYS, BUILDING_KEY, "highway")
    for r in _objects(src, osmium.osm.RELATION, osmium.filter.KeyFilter(*keys)):
        if r.tags.get("type") in _AREA_RELATIONS and (
                _place_or_building(r.tags) or is_pedestrian_area({t.k: t.v for t in r.tags})):
            candidates[r.id] = [m.ref for m in r.members if m.type == "w"]
    member_ways = {w for ways in candidates.values() for w in ways}
    step("relations")

    # 2. Nodes inside the area, and place nodes there.
    inside = None if area.area is None else _inside_nodes(src, area, stats)
    stats.nodes_inside = 0 if inside is None else len(inside)
    needed: list[npt.NDArray[np.int64]] = [np.asarray(_place_nodes(src, area), dtype=np.int64)]
    step("nodes")

    # 3. Ways touching the area (members of candidate relations whatever their tags).
    kept_ways: set[int] = set()
    touched_members: set[int] = set()
    batch = _WayBatch(inside)

    def flush() -> None:
        ids, wanted, parts = batch.touching()
        for way_id, keep, refs in zip(ids.tolist(), wanted.tolist(), parts, strict=True):
            if way_id in member_ways:
                touched_members.add(way_id)
            if keep:
                kept_ways.add(way_id)
                needed.append(refs)

    for w in _objects(src, osmium.osm.WAY):
        stats.ways_read += 1
        wanted = _wanted_way(w.tags)
        if wanted or w.id in member_ways:
            batch.add(w.id, [n.ref for n in w.nodes], wanted)
            if len(batch.refs) >= _CHUNK:
                flush()
    flush()
    kept_relations = {r for r, ways in candidates.items() if touched_members.intersection(ways)}
    missing = {w for r in kept_relations for w in candidates[r]} - kept_ways
    step("ways")

    # 4. Member ways of kept relations that do not touch the area themselves.
    if missing:
        for w in _objects(src, osmium.osm.WAY):
            if w.id in missing:
                kept_ways.add(w.id)
                needed.append(np.asarray([n.ref for n in w.nodes], dtype=np.int64))
    step("relation members")

    # 5. Write what is kept, in the file's order.
    nodes = set(np.unique(np.concatenate(needed)).tolist()) if needed else set()
    needed.clear()
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = osmium.SimpleWriter(str(dst), overwrite=True)
    seen = 0
    try:
        for o in _objects(src, osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION):
            if o.is_node():
                seen += 1
                if o.id in nodes:
                    writer.add_node(o)
                    stats.nodes_written += 1
            elif o.is_way():
                if o.id in kept_ways:
                    writer.add_way(o)
                    stats.ways_written += 1
                    stats.highway_ways += any(k in o.tags for k in NETWORK_KEYS)
            else:
                stats.relations_read += 1
                if o.id in kept_relations:
                    writer.add_relation(o)
                    stats.relations_written += 1
    finally:
        writer.close()
    stats.nodes_read = seen
    if area.area is None:
        stats.nodes_inside = seen
    step("write")


# -------------------------------------------------------------------------------- Overpass


def overpass_query(bbox: tuple[float, float, float, float], *, timeout_s: int = 300) -> str:
    """Return the Overpass QL query for what :func:`cut_osm` keeps, within a WGS84 box.

    Parameters
    ----------
    bbox
        ``(west, south, east, north)`` in degrees.
    timeout_s
        The server's time limit for the query.
    """
    w, s, e, n = bbox
    box = f"{s:.7f},{w:.7f},{n:.7f},{e:.7f}"
    lines = [f"[out:xml][timeout:{int(timeout_s)}][bbox:{box}];", "("]
    lines += [f'  way["{k}"];' for k in NETWORK_KEYS]
    lines += [f'  way["{BUILDING_KEY}"];', f'  relation["{BUILDING_KEY}"];',
              '  relation["highway"];']
    rules: dict[str, list[str]] = {}
    for _label, tags in PLACE_KINDS.values():
        for key, values in tags.items():
            rules.setdefault(key, []).extend(values)
    for key, wanted in rules.items():
        pattern = "|".join(re.escape(v) for v in dict.fromkeys(wanted))
        lines.append(f'  nwr["{key}"~"^({pattern})$"];')
    lines += [");", "(._;>;);", "out meta;"]
    return "\n".join(lines) + "\n"


def fetch_overpass(
    bbox: tuple[float, float, float, float],
    dst: str | Path,
    *,
    url: str = DEFAULT_OVERPASS_URL,
    timeout_s: float = 300.0,
) -> Path:
    """Download what a district needs within a box from an Overpass API endpoint, as OSM XML.

    Parameters
    ----------
    bbox
        ``(west, south, east, north)`` in WGS84 degrees.
    dst
        File to write the answer to (streamed, not held in memory).
    url
        The endpoint's interpreter URL.
    timeout_s
        Seconds the server may take (also the connection's read timeout, plus a minute).

    Raises
    ------
    OSMDataError
        If the endpoint cannot be reached, answers with an HTTP error, or reports a runtime
        error (timeout, out of memory) in its answer.
    """
    dst = Path(dst)
    query = overpass_query(bbox, timeout_s=int(timeout_s))
    body = urllib.parse.urlencode({"data": query}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "User-Agent": _USER_AGENT,
        "Content-Type": "application/x-www-form-urlencoded",
    })
    try:
        with urllib.request.urlopen(request, timeout=timeout_s + 60) as answer, \
                dst.open("wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
    except urllib.error.HTTPError as e:
        msg = f"Overpass endpoint {url} answered {e.code} {e.reason}"
        raise OSMDataError(msg) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        msg = f"cannot reach the Overpass endpoint {url} ({reason})"
        raise OSMDataError(msg) from e
    _check_overpass_answer(dst, url)
    return dst


def _check_overpass_answer(path: Path, url: str) -> None:
    """Refuse an answer that is not OSM XML or carries a runtime error remark."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4096)
        f.seek(max(0, size - 4096))
        tail = f.read()
    if b"<osm" not in head:
        shown = head[:80].decode("utf-8", "replace").strip()
        msg = f"Overpass endpoint {url} did not answer OSM XML (it began {shown!r})"
        raise OSMDataError(msg)
    for part in (head, tail):
        if (m := _REMARK.search(part)) and b"error" in m.group(1):
            text = m.group(1).decode("utf-8", "replace").strip()
            msg = f"Overpass endpoint {url} reported: {text}"
            raise OSMDataError(msg)
