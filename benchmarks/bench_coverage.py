"""Time nearest-site walking distances for every node: ours against the usual baselines.

Run ``python benchmarks/bench_coverage.py``. It loads (or builds) the bundled default district
from the default cache (``$PRACTICE_CIRCLE_CACHE``), then times, on the same walking graph:

* ours: :func:`geo.coverage.walk_minutes` on the district's practice positions, the whole call
  (snapping every position to its street, the multi-source search and the DataFrame);
* ours, repeated on one registry: :func:`geo.coverage.position_walk_minutes`, the same figures
  with the positions' snapping and the search graph they join kept
  (:func:`geo.coverage.attach_positions`), as every coverage after the first on one registry
  version pays (the issue's goal: within 1.5x the scipy kernel on the whole extract with 200
  positions);
* scipy kernel: bare ``scipy.sparse.csgraph.dijkstra(csr, indices=site_nodes, min_only=True)``;
* networkx: ``multi_source_dijkstra_path_length``;
* pandana: ``set_pois`` + ``nearest_pois`` (the contraction hierarchy is built beforehand and
  not timed), searching up to the 15-minute limit;
* ego_graph: the tutorial way, one ``nx.ego_graph(G, site, radius=limit)`` per site.

Baselines place each site at the node its position attaches to (the nearer end of its edge).
Each method runs after a warm-up, repeatedly; the table shows the median. Ours is also run with
the sites placed exactly at those nodes to check that every baseline agrees with it. A second
scenario uses 200 random sites (the issue's setting) and, unless ``--no-whole-extract``, a
third the whole unsimplified Taiyuan walk graph (about 19,000 nodes) with 200 random sites.

A last table times what the grid cells add (:func:`geo.coverage.coverage` with cells): the
cells as their centres on their nearest street (the rule before cells had several points),
then the fixed samples and (for the district) the residents' housing, each point snapped to
every street within 50 m beyond its nearest; cold (sampling and snapping) and warm (the
snapped points reused, as for categories or proposed sites).

Options: ``--only-whole-extract`` runs the whole-extract scenario alone (no district, no cell
table); ``--baselines scipy`` times the scipy kernel only (networkx, pandana and ego_graph are
slow on the whole extract); ``--repeat N`` runs the scenarios N times and reports medians of
the ratios (the machine may be shared).

The last line printed is one JSON object: ``{"speedup_vs": {...}, "kernel_ratio": {...},
"kernel_ratio_cpu": {...}, "cells_ms": {...}}``: each speed-up is the baseline's median time
divided by ours, for the district's own sites (``null`` when not run); ``kernel_ratio`` is, per
scenario, ours over the bare scipy kernel, snapping on each call and repeated on one registry,
each timed interleaved with the kernel (both see the same load, each first in every other
round) and the median over ``--repeat`` runs; ``kernel_ratio_cpu`` is the same ratio of the
calls' CPU time (``time.thread_time``). On a shared machine a call of a few milliseconds either
runs through or waits for another process's time slice, and the wall-clock median jumps
between the two; the CPU time counts only the call's own work (every step is single-threaded).
The cell timings are medians in milliseconds.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from _timing import Timing, measure
from rich.console import Console
from rich.table import Table
from scipy.sparse.csgraph import dijkstra

import geo
from geo.coverage import DEFAULT_WALK_M_PER_MIN, coverage, position_walk_minutes, walk_minutes
from geo.grid import (
    CellPoints,
    cell_samples,
    cells_geometry,
    cells_near_lines,
    grid_cells,
    resident_points,
)
from geo.network import WalkNetwork
from geo.walk import node_walk

LIMIT_MIN = 15.0
LIMIT_M = LIMIT_MIN * DEFAULT_WALK_M_PER_MIN
# Ours adds 1e-6 m to every walk from a site sitting exactly on a node: csgraph reads a zero
# weight as "no edge", so geo.coverage clamps the site's link to 1e-6 m.
TOL_M = 1e-5
# pandana's distances differ from exact double sums by up to a few centimetres.
PANDANA_TOL_M = 0.1
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandana
except Exception as e:  # any import failure means "skip pandana"
    pandana = None
    PANDANA_ERROR = f"{type(e).__name__}: {e}"
else:
    PANDANA_ERROR = ""


# ------------------------------------------------------------------------------ measuring


def interleaved(a: Callable[[], Any], b: Callable[[], Any], *, runs: int = 60,
                warmup: int = 2) -> tuple[Timing, Timing]:
    """Time ``a`` and ``b`` alternately, so that both see the same load on a shared machine.

    Each goes first in every other round: under load the scheduler's time slices can lock onto
    a fixed order and land their waits on the same one of the two every time. Wall-clock and
    CPU time are both recorded.
    """
    for _ in range(warmup):
        a()
        b()
    ta, tb = Timing(), Timing()
    gc.collect()
    gc.disable()
    try:
        for i in range(runs):
            pair = ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta))
            for fn, t in pair:
                c0, t0 = time.thread_time(), time.perf_counter()
                fn()
                t.wall.append(time.perf_counter() - t0)
                t.cpu.append(time.thread_time() - c0)
    finally:
        gc.enable()
    return ta, tb


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence C/C++ writes to fd 1 and 2 (pandana prints progress from C++)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


# ------------------------------------------------------------------------------ scenarios


OURS = "ours: geo.coverage.walk_minutes"
OURS_REPEATED = "ours, repeated on one registry: position_walk_minutes"
KERNEL = "scipy.sparse.csgraph.dijkstra (bare kernel)"
#: The issue's goal: a repeated coverage on the whole extract within 1.5x the bare kernel.
REPEATED_GOAL = 1.5
WHOLE = "whole Taiyuan extract, unsimplified"


@dataclass
class Row:
    method: str
    timing: Timing | None
    note: str = ""
    agrees: str = ""
    baseline: bool = True


@dataclass
class Scenario:
    name: str
    network: WalkNetwork
    lon: np.ndarray
    lat: np.ndarray
    rows: list[Row] = field(default_factory=list)
    positions: gpd.GeoDataFrame = field(init=False)
    #: Ours over the bare kernel, timed interleaved with it (by our method's name).
    vs_kernel: dict[str, float] = field(default_factory=dict)
    #: The same in CPU time.
    vs_kernel_cpu: dict[str, float] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.positions = gpd.GeoDataFrame(
            {"site_id": np.arange(len(self.lon)).astype(str)},
            geometry=gpd.points_from_xy(self.lon, self.lat), crs="EPSG:4326")

    def ours(self) -> Row:
        return self.rows[0]

    def kernel_ratio(self, method: str = OURS, *, cpu: bool = False) -> float | None:
        """Median time of one of ours over the bare scipy kernel's, timed interleaved."""
        return (self.vs_kernel_cpu if cpu else self.vs_kernel).get(method)

    def speedup(self, method: str) -> float | None:
        ours = self.ours().timing
        for r in self.rows:
            if r.method == method and r.timing is not None and ours is not None:
                return r.timing.median / ours.median
        return None


def site_nodes(network: WalkNetwork, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Node positions (CSR indices) the sites attach to: the nearer end of each site's edge."""
    at = network.attach(lon, lat)
    near_u = at.offset_m <= network.length[at.edge] / 2
    return np.unique(np.where(near_u, network.u[at.edge], network.v[at.edge]))


def nx_graph(network: WalkNetwork) -> nx.Graph:
    return nx.from_scipy_sparse_array(network.csr, edge_attribute="length")


def run_scenario(sc: Scenario, *, ego: bool = True, ego_runs: int = 3,
                 baselines: str = "all") -> None:
    net = sc.network
    n = net.n_nodes
    # Ours, the whole call. The first call also builds the street index (cached afterwards).
    t0 = time.perf_counter()
    walk_minutes(net, sc.lon, sc.lat)
    cold = time.perf_counter() - t0
    sc.rows.append(Row(OURS, measure(
        lambda: walk_minutes(net, sc.lon, sc.lat)),
        note=f"snap {len(sc.lon)} positions + search + DataFrame; first call {cold * 1e3:.1f} ms"))
    # Ours again on the same positions: the snapping is kept (the warm-up snaps them once).
    repeated = measure(lambda: position_walk_minutes(net, sc.positions))
    same = bool(np.array_equal(position_walk_minutes(net, sc.positions).to_numpy(),
                               walk_minutes(net, sc.lon, sc.lat).to_numpy()))
    sc.checks.append(("position_walk_minutes", same,
                      "identical to walk_minutes on the same positions"))
    sc.rows.append(Row(OURS_REPEATED, repeated,
                       note="snapping and source graph kept: search + DataFrame",
                       agrees="yes" if same else "NO", baseline=False))

    # Where our time goes (same call split in its three steps).
    gc.collect()
    gc.disable()
    attach_t, search_t, frame_t = [], [], []
    for _ in range(max(15, len(sc.ours().timing.wall) // 4)):  # type: ignore[union-attr]
        t0 = time.perf_counter()
        at = net.attach(sc.lon, sc.lat)
        t1 = time.perf_counter()
        nw = node_walk(net, at)
        t2 = time.perf_counter()
        pd.DataFrame({"walk_m": nw.walk_m, "walk_minutes": nw.walk_m / DEFAULT_WALK_M_PER_MIN,
                      "nearest": nw.source}, index=pd.Index(net.node_ids, name="osmid"))
        t3 = time.perf_counter()
        attach_t.append(t1 - t0)
        search_t.append(t2 - t1)
        frame_t.append(t3 - t2)
    gc.enable()
    sc.ours().note += (
        f"; split: attach {statistics.median(attach_t) * 1e3:.2f} ms, node_walk "
        f"{statistics.median(search_t) * 1e3:.2f} ms, DataFrame "
        f"{statistics.median(frame_t) * 1e3:.2f} ms"
    )

    sites = site_nodes(net, sc.lon, sc.lat)
    xs, ys = net.nodes["x"].to_numpy()[sites], net.nodes["y"].to_numpy()[sites]
    at_nodes = walk_minutes(net, xs, ys)  # ours, sites exactly at the baseline's nodes
    ours_m = at_nodes["walk_m"].to_numpy()

    # Bare scipy kernel.
    dist, _, src = dijkstra(net.csr, indices=sites, min_only=True, return_predecessors=True)
    ok = bool(np.allclose(dist, ours_m, rtol=0, atol=TOL_M))
    same_src = float(np.mean(src == sites[at_nodes["nearest"].to_numpy()]))
    sc.checks.append(("scipy kernel", ok, f"max |Δ| {np.max(np.abs(dist - ours_m)):.2e} m; "
                      f"same nearest site at {same_src:.1%} of nodes (rest are ties)"))
    sc.rows.append(Row(KERNEL, measure(
        lambda: dijkstra(net.csr, indices=sites, min_only=True)),
        note=f"{len(sites)} site nodes, no snapping, arrays only", agrees="yes" if ok else "NO"))
    # The ratios to the kernel, each timed interleaved with it (the table's rows are timed one
    # after the other, and a shared machine's load changes in between).
    for method, ours_fn in ((OURS, lambda: walk_minutes(net, sc.lon, sc.lat)),
                            (OURS_REPEATED, lambda: position_walk_minutes(net, sc.positions))):
        mine, kernel = interleaved(ours_fn, lambda: dijkstra(net.csr, indices=sites,
                                                             min_only=True))
        sc.vs_kernel[method] = mine.median / kernel.median
        sc.vs_kernel_cpu[method] = statistics.median(mine.cpu) / statistics.median(kernel.cpu)

    if baselines == "scipy":
        return

    # networkx.
    G = nx_graph(net)
    site_list = [int(s) for s in sites]
    d_nx = nx.multi_source_dijkstra_path_length(G, site_list, weight="length")
    nx_m = np.array([d_nx.get(i, np.inf) for i in range(n)])
    ok = bool(np.allclose(nx_m, ours_m, rtol=0, atol=TOL_M))
    sc.checks.append(("networkx", ok, f"max |Δ| {np.max(np.abs(nx_m - ours_m)):.2e} m"))
    sc.rows.append(Row("networkx multi_source_dijkstra_path_length", measure(
        lambda: nx.multi_source_dijkstra_path_length(G, site_list, weight="length"),
        min_runs=7), note="graph built beforehand", agrees="yes" if ok else "NO"))

    # pandana.
    if pandana is None:
        sc.rows.append(Row("pandana nearest_pois", None, note=f"skipped: {PANDANA_ERROR}"))
    else:
        keep = net.u != net.v
        nodes = pd.DataFrame({"x": net.nodes["x"].to_numpy(), "y": net.nodes["y"].to_numpy()})
        edges = pd.DataFrame({"from": net.u[keep], "to": net.v[keep],
                              "length": net.length[keep]})
        t0 = time.perf_counter()
        with quiet_stdout():
            pnet = pandana.Network(nodes["x"], nodes["y"], edges["from"], edges["to"],
                                   edges[["length"]], twoway=True)
        setup = time.perf_counter() - t0
        px, py = pd.Series(xs), pd.Series(ys)

        def pandana_query() -> pd.DataFrame:
            pnet.set_pois("sites", LIMIT_M, 1, px, py)
            return pnet.nearest_pois(LIMIT_M, "sites", num_pois=1)

        with quiet_stdout():
            res = pandana_query()
            timing = measure(pandana_query)
        p_m = res[1].reindex(range(n)).to_numpy(dtype=float)
        within = ours_m < LIMIT_M - PANDANA_TOL_M
        ok = bool(np.allclose(p_m[within], ours_m[within], rtol=0, atol=PANDANA_TOL_M)
                  and np.all(p_m[ours_m > LIMIT_M + PANDANA_TOL_M] >= LIMIT_M - PANDANA_TOL_M))
        sc.checks.append(("pandana", ok, f"within {LIMIT_M:.0f} m: max |Δ| "
                          f"{np.max(np.abs(p_m[within] - ours_m[within])):.2e} m; beyond: capped"))
        sc.rows.append(Row("pandana set_pois + nearest_pois", timing,
                           note=f"≤ {LIMIT_M:.0f} m; contraction hierarchy built beforehand "
                                f"({setup * 1e3:.0f} ms, not timed)",
                           agrees="yes" if ok else "NO"))

    # The tutorial way: one ego graph per site, coverage within the limit only.
    if ego:
        def ego_cover() -> set[int]:
            covered: set[int] = set()
            for s in site_list:
                covered.update(nx.ego_graph(G, s, radius=LIMIT_M, distance="length").nodes)
            return covered

        covered = ego_cover()
        clear = np.abs(ours_m - LIMIT_M) > TOL_M
        ego_mask = np.isin(np.arange(n), list(covered))
        ok = bool(np.array_equal(ego_mask[clear], ours_m[clear] <= LIMIT_M))
        sc.checks.append(("ego_graph", ok, f"covered nodes within {LIMIT_M:.0f} m identical"))
        sc.rows.append(Row("networkx ego_graph per site (tutorial)", measure(
            ego_cover, min_runs=ego_runs, min_seconds=0.0, warmup=1),
            note=f"covered set within {LIMIT_M:.0f} m only", agrees="yes" if ok else "NO"))


def random_sites(network: WalkNetwork, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """K positions scattered up to about 100 m around random nodes."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(network.n_nodes, size=k, replace=False)
    lon = network.nodes["x"].to_numpy()[pick] + rng.uniform(-0.001, 0.001, k)
    lat = network.nodes["y"].to_numpy()[pick] + rng.uniform(-0.0008, 0.0008, k)
    return lon, lat


def whole_extract_network() -> WalkNetwork:
    """The whole Taiyuan walk graph, unsimplified, largest component (FIELD-NOTES: 19,162)."""
    import osmnx as ox

    import data
    from geo.network import graph_from_lines, walk_network, walkable_lines

    G = graph_from_lines(walkable_lines(data.read_taiyuan_lines()))
    G = ox.truncate.largest_component(G, strongly=False)
    return walk_network(G)


# ------------------------------------------------------------------------------- grid cells


@dataclass
class CellRow:
    scenario: str
    rule: str
    points: int
    cold: float
    warm: Timing


def extract_cells(network: WalkNetwork) -> gpd.GeoDataFrame:
    """H3 cells where the network has streets (as a district's study area is found)."""
    return grid_cells(cells_geometry(cells_near_lines(network.edges.geometry)))


def run_cells(name: str, network: WalkNetwork, lon: np.ndarray, lat: np.ndarray,
              cells: gpd.GeoDataFrame, housing: CellPoints | None) -> list[CellRow]:
    """Time coverage() of the cells under each attachment rule, cold and warm."""
    sites = gpd.GeoDataFrame({"site_id": np.arange(len(lon)).astype(str)},
                             geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    network.attach(lon, lat)  # the street index is built once per network, not timed here
    rules: list[tuple[str, Callable[[], CellPoints], float]] = [
        ("centre, nearest street (before)",
         lambda: CellPoints.one_per_cell(cells["lon"].to_numpy(), cells["lat"].to_numpy()), 0.0),
        ("7 fixed samples, streets within 50 m",
         lambda: cell_samples(cells, crs=network.crs_metric), 50.0),
    ]
    if housing is not None:
        rules.append(("residents' housing, streets within 50 m", lambda: housing, 50.0))
    rows = []
    for rule, make, snap in rules:
        t0 = time.perf_counter()
        pts = make()  # new points each time: nothing snapped yet
        coverage(network, sites, cells, cell_points=pts, snap_m=snap)
        cold = time.perf_counter() - t0
        warm = measure(partial(coverage, network, sites, cells, cell_points=pts, snap_m=snap),
                       min_runs=7)
        rows.append(CellRow(name, rule, len(pts), cold, warm))
    return rows


def print_cells(rows: list[CellRow]) -> None:
    table = Table(title="coverage() of nodes and grid cells: what the cell points cost")
    for col in ("scenario", "cells as", "points", "cold ms", "warm median ms"):
        table.add_column(col, justify="right" if "ms" in col or col == "points" else "left")
    for r in rows:
        table.add_row(r.scenario, r.rule, f"{r.points:,}", f"{r.cold * 1e3:,.1f}",
                      f"{r.warm.median * 1e3:,.2f}")
    console.print(table)


# --------------------------------------------------------------------------------- report


def fmt_ms(t: Timing | None) -> str:
    if t is None:
        return "—"
    return f"{t.median * 1e3:,.3f}"


def print_report(scenarios: list[Scenario]) -> None:
    table = Table(title="Nearest-site walking distance for every node (median of N runs)")
    numbers = ("median ms", "best ms", "runs", "baseline / ours")
    for col in ("scenario", "method", *numbers, "agrees", "notes"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for sc in scenarios:
        ours = sc.ours().timing
        for i, r in enumerate(sc.rows):
            ratio = "" if not r.baseline or i == 0 or r.timing is None or ours is None else (
                f"{r.timing.median / ours.median:,.2f}×")
            table.add_row(
                sc.name if i == 0 else "", r.method, fmt_ms(r.timing),
                "—" if r.timing is None else f"{r.timing.best * 1e3:,.3f}",
                "—" if r.timing is None else str(len(r.timing.wall)), ratio, r.agrees, r.note,
            )
        table.add_section()
    console.print(table)
    for sc in scenarios:
        for name, ok, detail in sc.checks:
            status = "[green]agrees[/green]" if ok else "[red]DISAGREES[/red]"
            console.print(f"{sc.name}: {name} {status} with ours (sites at nodes): {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--district", default=geo.DEFAULT_DISTRICT)
    parser.add_argument("--random-sites", type=int, default=200)
    parser.add_argument("--seed", type=int, default=200)
    parser.add_argument("--no-whole-extract", action="store_true",
                        help="skip the scenario on the whole unsimplified Taiyuan graph")
    parser.add_argument("--only-whole-extract", action="store_true",
                        help="run the whole-extract scenario alone (no district, no cells)")
    parser.add_argument("--baselines", choices=("all", "scipy"), default="all",
                        help="time every baseline, or the bare scipy kernel only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the scenarios this many times; ratios are their medians")
    args = parser.parse_args(argv)
    if args.only_whole_extract and args.no_whole_extract:
        parser.error("--only-whole-extract and --no-whole-extract exclude each other")

    scenarios: list[Scenario] = []
    cell_rows: list[CellRow] = []
    own: Scenario | None = None
    if not args.only_whole_extract:
        district = geo.get_district(args.district)
        net = district.network
        geom = district.positions.geometry
        own = Scenario(
            f"{args.district}: {len(geom)} own sites, {net.n_nodes:,} nodes",
            net, geom.x.to_numpy(), geom.y.to_numpy(),
        )
        lon, lat = random_sites(net, args.random_sites, args.seed)
        rnd = Scenario(f"{args.district}: {args.random_sites} random sites, {net.n_nodes:,} nodes",
                       net, lon, lat)
        scenarios += [own, rnd]
        console.print("[dim]timing the grid cells …[/dim]")
        cell_rows = run_cells(f"{args.district}: {len(district.cells)} cells", net, own.lon,
                              own.lat, district.cells, resident_points(district))
    if not args.no_whole_extract:
        whole = whole_extract_network()
        lon, lat = random_sites(whole, args.random_sites, args.seed)
        scenarios.append(Scenario(
            f"{WHOLE}: {args.random_sites} random sites, "
            f"{whole.n_nodes:,} nodes", whole, lon, lat))
        if not args.only_whole_extract:
            cells = extract_cells(whole)
            cell_rows += run_cells(f"whole extract: {len(cells):,} cells", whole, lon, lat,
                                   cells, None)
    # Each run's kernel ratios, per scenario: (snapping each call, repeated on one registry).
    ratios: dict[str, list[tuple[float | None, float | None]]] = {sc.name: [] for sc in scenarios}
    ratios_cpu: dict[str, list[tuple[float | None, float | None]]] = {
        sc.name: [] for sc in scenarios}
    runs = max(1, int(args.repeat))
    for k in range(runs):
        fresh = [Scenario(sc.name, sc.network, sc.lon, sc.lat) for sc in scenarios]
        for sc in fresh:
            console.print(f"[dim]running {sc.name}{f' (run {k + 1}/{runs})' if runs > 1 else ''}"
                          " …[/dim]")
            run_scenario(sc, baselines=args.baselines)
            ratios[sc.name].append((sc.kernel_ratio(OURS), sc.kernel_ratio(OURS_REPEATED)))
            ratios_cpu[sc.name].append((sc.kernel_ratio(OURS, cpu=True),
                                        sc.kernel_ratio(OURS_REPEATED, cpu=True)))
        if k == runs - 1:
            scenarios = fresh
            own = fresh[0] if own is not None else None
    print_report(scenarios)
    if cell_rows:
        print_cells(cell_rows)

    goals = {"pandana": 5.0, "networkx": 10.0, "scipy_kernel": 0.5}
    methods = {"pandana": "pandana set_pois + nearest_pois",
               "networkx": "networkx multi_source_dijkstra_path_length",
               "ego_graph": "networkx ego_graph per site (tutorial)",
               "scipy_kernel": KERNEL}
    speedup = {k: (own.speedup(m) if own is not None else None) for k, m in methods.items()}
    for sc in scenarios:
        parts = []
        for key in ("pandana", "networkx", "scipy_kernel"):
            x = sc.speedup(methods[key])
            if x is None:
                parts.append(f"{key}: n/a")
            else:
                mark = "met" if x >= goals[key] else "MISSED"
                parts.append(f"{key} {x:.3f}× (goal ≥ {goals[key]}×: {mark})")
        console.print(f"goals, {sc.name}: " + "; ".join(parts))
    def medians(got: list[tuple[float | None, float | None]]) -> dict[str, float | None]:
        each = [a for a, _ in got if a is not None]
        again = [b for _, b in got if b is not None]
        return {"snapping_each_call": round(statistics.median(each), 3) if each else None,
                "repeated": round(statistics.median(again), 3) if again else None}

    kernel_ratio = {name: medians(got) for name, got in ratios.items()}
    kernel_ratio_cpu = {name: medians(got) for name, got in ratios_cpu.items()}
    for name, med in kernel_ratio.items():
        cpu = kernel_ratio_cpu[name]
        if med["repeated"] is None or cpu["repeated"] is None:
            continue
        # The goal is set on the whole extract: on a small district the kernel takes a
        # fraction of a millisecond and fixed costs (the frame, the source graph) dominate.
        goal, goal_cpu = "", ""
        if name.startswith(WHOLE):
            mark = "met" if med["repeated"] <= REPEATED_GOAL else "MISSED"
            goal = f"goal ≤ {REPEATED_GOAL}×: {mark}; "
            mark = "met" if cpu["repeated"] <= REPEATED_GOAL else "MISSED"
            goal_cpu = f"{mark}; "
        every = ", ".join(f"{b:.2f}×" for _, b in ratios[name] if b is not None)
        every_cpu = ", ".join(f"{b:.2f}×" for _, b in ratios_cpu[name] if b is not None)
        console.print(
            f"repeated coverage on one registry, {name}: ours / scipy kernel "
            f"{med['repeated']:.2f}× wall clock ({goal}snapping on each call "
            f"{med['snapping_each_call']:.2f}×; median of run(s): {every}), "
            f"{cpu['repeated']:.2f}× CPU time ({goal_cpu}snapping on each call "
            f"{cpu['snapping_each_call']:.2f}×; run(s): {every_cpu})")
    all_agree = all(ok for sc in scenarios for _, ok, _ in sc.checks)
    console.print("all baselines agree with ours" if all_agree
                  else "[red]some baseline disagrees with ours: see above[/red]")
    sys.stdout.flush()
    print(json.dumps({
        "speedup_vs": {k: (None if v is None else round(v, 3)) for k, v in speedup.items()},
        "kernel_ratio": kernel_ratio,
        "kernel_ratio_cpu": kernel_ratio_cpu,
        "cells_ms": {f"{r.scenario} | {r.rule}": round(r.warm.median * 1e3, 3)
                     for r in cell_rows},
    }, ensure_ascii=False))
    return 0 if all_agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
