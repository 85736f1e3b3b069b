"""Build the walking network from OSM data and attach positions to its streets."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

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

# osmnx's "walk" network filter (osmnx/_overpass.py), applied to tags we already hold.
_EXCLUDED_HIGHWAY = re.compile(
    "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
    "raceway|razed|rest_area|services"
)
_PRIVATE = re.compile("private")
_SEPARATE_SIDEWALK_KEYS = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")
_WALK_TAGS = ("highway", "area", "access", "foot", "service", *_SEPARATE_SIDEWALK_KEYS)
_HSTORE_ESCAPE = re.compile(r"\\(.)")
_HSTORE_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
#: A position farther than this from every walkable street is out of the district's area: the
#: walk would be guessed, not measured. One bound for the map, matching and requests.
MAX_ACCESS_M = 800.0
# Edge weights must stay positive: csgraph would read an explicit zero as "no edge".
_MIN_WEIGHT_M = 1e-6


def parse_other_tags(text: object) -> dict[str, str]:
    """Parse the hstore ``other_tags`` string written by GDAL's OSM driver."""
    if not isinstance(text, str) or not text:
        return {}
    return {_unescape(k): _unescape(v) for k, v in _HSTORE_PAIR.findall(text)}


def _unescape(text: str) -> str:
    return _HSTORE_ESCAPE.sub(r"\1", text)


def is_walkable(tags: Mapping[str, Any]) -> bool:
    """Tell whether a way passes osmnx's ``walk`` filter.

    Parameters
    ----------
    tags
        The way's OSM tags; missing or empty values count as absent.
    """

    def tag(key: str) -> str:
        value = tags.get(key)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return str(value)

    highway = tag("highway")
    if not highway or _EXCLUDED_HIGHWAY.search(highway):
        return False
    if re.search("yes", tag("area")) or re.search("no", tag("foot")):
        return False
    if _PRIVATE.search(tag("access")) or _PRIVATE.search(tag("service")):
        return False
    return not any(re.search("separate", tag(k)) for k in _SEPARATE_SIDEWALK_KEYS)


def walkable_lines(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the ways of a GDAL OSM ``lines`` layer that pass the walk filter."""
    other = lines["other_tags"].map(parse_other_tags)
    rows = []
    for highway, extra in zip(lines["highway"], other, strict=True):
        tags = dict(extra)
        tags["highway"] = highway
        rows.append(is_walkable(tags))
    return lines.loc[np.asarray(rows, dtype=bool)]


def graph_from_lines(lines: gpd.GeoDataFrame) -> nx.MultiDiGraph:
    """Build an unsimplified walking graph from line geometries that share exact vertices.

    A GDAL ``lines`` layer keeps no node topology, but ways that meet share an OSM node and so
    an identical coordinate; every vertex becomes a node and every segment an edge, walkable in
    both directions. Joining only at way ends would lose most of the network.

    Parameters
    ----------
    lines
        Walkable ways (WGS84 LineStrings) with ``osm_id``, ``highway`` and ``name``.
    """
    if lines.empty:
        msg = "no walkable ways in the data"
        raise OSMDataError(msg)
    xy, way = shapely.get_coordinates(lines.geometry.to_numpy(), return_index=True)
    uniq, node = np.unique(xy, axis=0, return_inverse=True)
    node = node.ravel()
    same_way = way[1:] == way[:-1]
    u, v, w = node[:-1][same_way], node[1:][same_way], way[:-1][same_way]
    keep = u != v
    u, v, w = u[keep], v[keep], w[keep]
    length = ox.distance.great_circle(uniq[u, 1], uniq[u, 0], uniq[v, 1], uniq[v, 0])

    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_nodes_from((int(i), {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(uniq))
    osm_ids = lines["osm_id"].astype("int64").to_numpy()
    highways = lines["highway"].to_numpy()
    names = lines["name"].fillna("").to_numpy()
    for a, b, i, d in zip(u.tolist(), v.tolist(), w.tolist(), length.tolist(), strict=True):
        attrs = {"osmid": int(osm_ids[i]), "highway": highways[i], "name": names[i], "length": d}
        G.add_edge(a, b, reversed=False, **attrs)
        G.add_edge(b, a, reversed=True, **attrs)
    G.remove_nodes_from(list(nx.isolates(G)))
    return G


def graph_from_osm_xml(path: str | Path) -> nx.MultiDiGraph:
    """Read an OSM XML file into an unsimplified walking graph (walk filter applied).

    Raises
    ------
    OSMDataError
        If the file is missing, empty, not OSM XML, truncated, or has no walkable ways.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise OSMDataError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: the file is empty"
        raise OSMDataError(msg)
    try:
        root_tag = next(ET.iterparse(path, events=("start",)))[1].tag
    except ET.ParseError as e:
        msg = f"{path}: not XML ({e})"
        raise OSMDataError(msg) from e
    if root_tag != "osm":
        msg = f"{path}: not OSM XML (root element <{root_tag}>, expected <osm>)"
        raise OSMDataError(msg)
    try:
        ET.parse(path)
    except ET.ParseError as e:
        msg = f"{path}: broken or truncated OSM XML ({e})"
        raise OSMDataError(msg) from e

    old_tags = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = sorted({*old_tags, *_WALK_TAGS})
    try:
        G = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
    except Exception as e:  # osmnx raises a variety of errors for odd inputs
        msg = f"{path}: cannot read OSM data ({type(e).__name__}: {e})"
        raise OSMDataError(msg) from e
    finally:
        ox.settings.useful_tags_way = old_tags

    drop = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not is_walkable(d)]
    G.remove_edges_from(drop)
    G.remove_nodes_from(list(nx.isolates(G)))
    if G.number_of_edges() == 0:
        msg = f"{path}: no walkable ways in the file"
        raise OSMDataError(msg)
    return G


def simplify_walk_graph(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Keep the largest connected component, simplify with osmnx and measure edges in metres."""
    G = ox.truncate.largest_component(G, strongly=False)
    if "simplified" not in G.graph:
        G = ox.simplify_graph(G)
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
    row per street segment with ``u``, ``v``, ``key``, ``length`` (metres) and a WGS84 geometry.
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

    @cached_property
    def _segments(self) -> _SegmentIndex:
        return _SegmentIndex(self._edge_geoms_metric)

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

        Parameters
        ----------
        lon, lat
            Position coordinates in degrees.
        max_access_m
            Refuse positions farther than this from any street.

        Raises
        ------
        OutOfAreaError
            If a position is farther than ``max_access_m`` from the network.
        """
        x, y = self._to_metric.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        edge, frac, access = self._segments.nearest(x, y)
        if max_access_m is not None and len(access) and np.any(access > max_access_m):
            bad = int(np.argmax(access))
            msg = (
                f"position ({float(np.atleast_1d(lon)[bad]):.6f}, "
                f"{float(np.atleast_1d(lat)[bad]):.6f}) is {access[bad]:.0f} m from the walking "
                f"network (limit {max_access_m:.0f} m)"
            )
            raise OutOfAreaError(msg)
        return EdgePositions(edge, frac * self.length[edge], access)

    def attach_points(self, points: gpd.GeoSeries | gpd.GeoDataFrame) -> EdgePositions:
        """Attach point geometries (any CRS; polygons use their representative point)."""
        geom = points.geometry.to_crs("EPSG:4326")
        pts = shapely.point_on_surface(geom.to_numpy())
        return self.attach(shapely.get_x(pts), shapely.get_y(pts))


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
        c for c in ("u", "v", "key", "osmid", "highway", "name", "length", "geometry") if c in edges
    ]
    edges = edges[keep].copy()
    for col in ("osmid", "highway", "name"):
        if col in edges:
            edges[col] = edges[col].map(_flatten)
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
