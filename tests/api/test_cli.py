"""The command line as a user runs it: a real subprocess on the session's built cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
                       inside=district.nodes["inside"].to_numpy(),
                       cell_points=geo.resident_points(district))
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


# ------------------------------------------------------- hostile input: one line, exit code 2


def assert_user_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("error: ")
    for needle in needles:
        assert needle in res.stderr, res.stderr


def cache_entries(cache: Path) -> list[str]:
    folder = cache / "districts"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_import_node_out_of_range_exits_2_and_leaves_nothing(osm_xml: Path,
                                                              tmp_path: Path) -> None:
    bad = tmp_path / "far.osm"
    bad.write_bytes(re.sub(rb' lon="[^"]*"', b' lon="999.3"', osm_xml.read_bytes(), count=1))
    cache = tmp_path / "cache"
    res = run("import-osm", str(bad), "--name", "坏经度", cache=cache)
    assert_user_error(res, "far.osm", "lon='999.3'", "-180 to 180")
    assert cache_entries(cache) == []


@pytest.mark.parametrize(
    "name",
    ["长" * 300, "tab\there", "<img src=x onerror=alert(1)>", "../up"],
    ids=["300 characters", "tab", "markup", "dot-dot"],
)
def test_import_bad_name_exits_2_and_leaves_nothing(name: str, osm_xml: Path,
                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    res = run("import-osm", str(osm_xml), "--name", name, cache=cache)
    assert_user_error(res, "invalid district name")
    assert cache_entries(cache) == [] and not (cache / "up").exists()


@pytest.mark.parametrize("attack", ["external entity", "billion laughs"])
def test_import_xml_attacks_exit_2_and_read_nothing(attack: str, osm_xml: Path,
                                                    tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("CANARY-51d2\n")
    if attack == "external entity":
        dtd = f"<!DOCTYPE osm [<!ENTITY xxe SYSTEM '{secret.as_uri()}'>]>"
        body = b"<tag k='name' v='&xxe;'/></way>"
    else:
        dtd = "<!DOCTYPE osm [<!ENTITY a0 'ha'>" + "".join(
            f"<!ENTITY a{i} '{f'&a{i - 1};' * 10}'>" for i in range(1, 10)) + "]>"
        body = b"<tag k='name' v='&a9;'/></way>"
    head, rest = osm_xml.read_bytes().split(b"\n", 1)
    bad = tmp_path / "attack.osm"
    bad.write_bytes(head + b"\n" + dtd.encode() + b"\n" + rest.replace(b"</way>", body, 1))
    cache = tmp_path / "cache"
    res = run("import-osm", str(bad), "--name", "攻击", cache=cache)
    assert_user_error(res, "document type declaration")
    assert "CANARY" not in res.stderr + res.stdout
    assert cache_entries(cache) == []


@pytest.mark.parametrize(
    ("option", "suffix", "content", "needle"),
    [
        ("--demand", "csv", "lon,lat,population\n112.55,37.84," + "9" * 400 + "\n",
         "counts above"),
        ("--demand", "geojson", "<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>CSV:"
         "{secret}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>", "not GeoJSON"),
        ("--extra-sites", "geojson", "<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>"
         "CSV:{secret}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>", "not GeoJSON"),
    ],
    ids=["huge count", "vrt as demand", "vrt as extra sites"],
)
def test_coverage_hostile_files_exit_2(cache_dir: Path, tmp_path: Path, option: str,
                                       suffix: str, content: str, needle: str) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("CANARY-51d2,population\n1,2\n")
    bad = tmp_path / f"input.{suffix}"
    bad.write_text(content.format(secret=secret))
    res = run("coverage", option, str(bad), cache=cache_dir)
    assert_user_error(res, "input." + suffix, needle)
    assert "CANARY" not in res.stderr + res.stdout


def test_extra_sites_with_a_profile_exits_2(cache_dir: Path, tmp_path: Path) -> None:
    extra = tmp_path / "picks.geojson"
    extra.write_text('{"type": "FeatureCollection", "features": []}')
    res = run("coverage", "--extra-sites", str(extra), "--profile", "elderly", cache=cache_dir)
    assert_user_error(res, "drop --profile")


def test_recommend_unknown_method_exits_2(cache_dir: Path) -> None:
    res = run("recommend", "--add", "1", "--method", "quantum", cache=cache_dir)
    assert_user_error(res, "unknown method 'quantum'")


def test_district_name_with_rich_markup_is_printed_as_is(cache_dir: Path) -> None:
    res = run("coverage", "--district", "[/x][bold]区", cache=cache_dir)
    assert_user_error(res, "unknown district", "[/x][bold]区")


def test_a_bare_value_error_is_not_a_user_error() -> None:
    from api.cli import USER_ERRORS
    from api.errors import ERROR_TABLE

    assert not issubclass(ValueError, USER_ERRORS)
    assert all(e is not ValueError and e.__module__.startswith(("geo.", "api."))
               for e in USER_ERRORS)
    # One table: the CLI's user errors are exactly the API's 4xx errors.
    assert set(USER_ERRORS) == {e for e, (status, _, _) in ERROR_TABLE.items() if status < 500}
    assert {"geo._errors"} <= {e.__module__ for e in USER_ERRORS}


def test_users_rotate_and_revoke_tokens(cache_dir: Path, tmp_path: Path) -> None:
    from sqlalchemy import text
    from typer.testing import CliRunner

    from api.cli import app
    from api.services.accounts import authenticate
    from api.services.dispatch_errors import UnauthorizedError
    from api.storage.session import get_engine, session_maker

    db = f"sqlite:///{tmp_path / 'users.db'}"

    def users(*args: str) -> subprocess.CompletedProcess[str]:
        return run("users", *args, "--database-url", db, cache=cache_dir)

    made = users("create", "--role", "resident", "--name", "张阿姨")
    assert made.returncode == 0, made.stderr
    old = made.stdout.strip().splitlines()[-1]
    found = re.search(r"created user (\d+)", made.stderr)
    assert found is not None, made.stderr
    uid = int(found.group(1))

    rotated = users("rotate", "--id", str(uid))
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("pc_") and new != old and "valid until" in rotated.stderr
    with session_maker(db)() as s:
        assert authenticate(s, new).id == uid
        with pytest.raises(UnauthorizedError):
            authenticate(s, old)  # the old token stopped working

    revoked = users("revoke", "--name", "张阿姨")
    assert revoked.returncode == 0 and f"user {uid}" in revoked.stdout, revoked.stderr
    with session_maker(db)() as s:
        with pytest.raises(UnauthorizedError, match="吊销"):
            authenticate(s, new)
        assert new not in str(s.execute(text("SELECT * FROM users")).all())  # stored hashed

    # The rest in-process (each subprocess pays the imports again).
    def quick(*args: str) -> Any:
        return CliRunner().invoke(app, ["users", *args, "--database-url", db,
                                        "--cache", str(cache_dir)])

    again = quick("revoke", "--id", str(uid))
    assert again.exit_code == 0 and "already" in again.output
    back = quick("rotate", "--name", "张阿姨")  # a revoked user gets access back this way
    assert back.exit_code == 0, back.output
    with session_maker(db)() as s:
        assert authenticate(s, back.stdout.strip().splitlines()[-1]).id == uid
    assert quick("create", "--role", "resident", "--name", "张阿姨").exit_code == 0
    for args, needle in [(("revoke", "--name", "张阿姨"), "use --id"),  # two of that name
                         (("rotate", "--id", "9999"), "9999"),
                         (("rotate",), "exactly one"),
                         (("revoke", "--id", str(uid), "--name", "张阿姨"), "exactly one")]:
        res = quick(*args)
        assert res.exit_code == 2 and needle in res.output, (args, res.output)
    get_engine(db).dispose()
