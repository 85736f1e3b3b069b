"""The command line as a user runs it: a real subprocess on the session's built cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest

import geo

CLI = [sys.executable, "-m", "api.cli"]


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache), "COLUMNS": "160"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_districts_json_lists_bundled_with_extract_share(cache_dir: Path) -> None:
    res = run("districts", "--json", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    names = {r["name"]: r for r in rows}
    assert {"小店区", "迎泽区"} <= names.keys()
    assert names["小店区"]["default"] and names["小店区"]["built"]
    assert all(0 < r["extract_share"] <= 1 for r in rows)


def test_coverage_json_matches_library(cache_dir: Path, district: geo.District) -> None:
    res = run("coverage", "--json", "--minutes", "15", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("district", "nodes", "edges", "sites", "minutes", "walk_m_per_min",
                "covered_node_share", "covered_cell_share"):
        assert key in out
    cov = geo.coverage(district.network, district.positions, district.cells,
                       inside=district.nodes["inside"].to_numpy())
    assert out["district"] == "小店区"
    assert out["nodes"] == district.network.n_nodes
    assert out["sites"] == len(district.positions)
    assert out["covered_node_share"] == pytest.approx(cov.covered_node_share(), abs=1e-4)
    assert out["covered_cell_share"] == pytest.approx(cov.covered_cell_share(), abs=1e-4)
    assert 0 < out["covered_cell_share"] < 1


def test_coverage_table_is_human_readable(cache_dir: Path) -> None:
    res = run("coverage", "--minutes", "10", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    assert "新时代文明实践站" in res.stdout and "cells within limit" in res.stdout
    assert "15%" in res.stdout or "extract covers" in res.stdout


def test_shorter_limit_covers_less(cache_dir: Path) -> None:
    a = json.loads(run("coverage", "--json", "--minutes", "5", cache=cache_dir).stdout)
    b = json.loads(run("coverage", "--json", "--minutes", "15", cache=cache_dir).stdout)
    assert a["covered_cell_share"] < b["covered_cell_share"]


def test_unknown_district_lists_known(cache_dir: Path) -> None:
    res = run("coverage", "--district", "不存在区", cache=cache_dir)
    assert res.returncode == 2
    assert "unknown district" in res.stderr and "小店区" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not xml at all", "not XML"),
        (b"<html><body>hi</body></html>", "not OSM XML"),
        (b"<?xml version='1.0'?><osm version='0.6'><node id='1' lat='1' lon='1'/>", "truncated"),
    ],
)
def test_import_bad_files_exit_2_and_leave_nothing(
    cache_dir: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_bytes(content)
    cache = tmp_path / "cache"
    cache.mkdir()
    res = run("import-osm", str(bad), "--name", "坏文件", cache=cache)
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2  # one message, maybe wrapped once
    assert not (cache / "districts" / "坏文件").exists()
    leftovers = list((cache / "districts").glob("*")) if (cache / "districts").exists() else []
    assert leftovers == []


def test_import_real_osm_then_coverage(osm_xml: Path, tmp_path: Path, cache_dir: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    res = run("import-osm", str(osm_xml), "--name", "海淀-学清", cache=cache)
    assert res.returncode == 0, res.stderr
    out = json.loads(run("coverage", "--district", "海淀-学清", "--json", cache=cache).stdout)
    assert out["nodes"] > 100 and out["sites"] > 0
    listed = json.loads(run("districts", "--json", cache=cache).stdout)
    assert any(r["name"] == "海淀-学清" and r["source"] == "imported" for r in listed)


def test_export_geopackage_can_be_rechecked(cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "xd.gpkg"
    res = run("export", "--out", str(out), cache=cache_dir)
    assert res.returncode == 0, res.stderr
    nodes = gpd.read_file(out, layer="nodes")
    edges = gpd.read_file(out, layer="edges")
    sites = gpd.read_file(out, layer="sites")
    cells = gpd.read_file(out, layer="cells")
    assert {"osmid", "walk_minutes", "nearest_site"} <= set(nodes.columns)
    assert {"u", "v", "key", "length_m"} <= set(edges.columns)
    want = {"site_id", "level", "edge_u", "edge_v", "edge_offset_m", "access_m"}
    assert want <= set(sites.columns)
    assert len(cells) > 0 and "walk_minutes" in cells
    # Recheck with another tool: networkx on the exported layers alone.
    G = nx.Graph()
    for u, v, w in edges[["u", "v", "length_m"]].itertuples(index=False):
        if u != v and (not G.has_edge(u, v) or G[u][v]["weight"] > w):
            G.add_edge(int(u), int(v), weight=float(w))
    lengths = {
        (int(r.u), int(r.v), int(r.key)): float(r.length_m) for r in edges.itertuples(index=False)
    }
    for s in sites.itertuples(index=False):
        node = f"site:{s.site_id}"
        length = lengths[(int(s.edge_u), int(s.edge_v), int(s.edge_key))]
        G.add_edge(node, int(s.edge_u), weight=s.access_m + s.edge_offset_m)
        G.add_edge(node, int(s.edge_v), weight=s.access_m + length - s.edge_offset_m)
    dist = nx.multi_source_dijkstra_path_length(G, {f"site:{s}" for s in sites.site_id},
                                               weight="weight")
    rng = np.random.default_rng(0)
    sample = nodes.iloc[rng.choice(len(nodes), 40, replace=False)]
    pace = 1000 / 15
    for r in sample.itertuples(index=False):
        assert r.walk_minutes == pytest.approx(dist[int(r.osmid)] / pace, rel=1e-9, abs=1e-6)
