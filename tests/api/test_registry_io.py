"""``practice-circle registry template|import|export``: an office's spreadsheet in and out.

Real bundled data (two OSM places of 小店区 that are not positions yet), real databases (a fresh
SQLite + SpatiaLite file per test; PostGIS for the apply path), and the real CLI in a subprocess
for the office's own loop (template → fill → import → coverage) and for a bad file.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from shapely.geometry import Point
from sqlalchemy import func, select
from typer.testing import CliRunner

import geo
from api.cli import app
from api.services.registry import RegistryEntryError, check_place
from api.services.registry_io import (
    COLUMNS,
    EXAMPLE_ROW,
    RegistryFileError,
    export_registry,
    import_registry,
    metres,
    write_template,
)
from api.storage.models import Position, RegistryChange, Team
from api.storage.registry import read_registry, registry_version
from api.storage.seed import prepare_database
from api.storage.session import get_engine, session_maker
from geo.datum import from_wgs84
from geo.registry import nearest_parent
from tests.api.dispatch.helpers import drop_postgres_database, postgres_script

CLI = [sys.executable, "-m", "api.cli"]
HEADERS = [c.zh for c in COLUMNS]
_names = itertools.count()


# --- databases -------------------------------------------------------------------------------

def _sqlite(tmp: Path, district: geo.District) -> str:
    url = f"sqlite:///{tmp / 'practice.db'}"
    prepare_database(url, district)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, district: geo.District) -> Iterator[str]:
    """A fresh SQLite database seeded with the demo registry."""
    url = _sqlite(tmp_path, district)
    yield url
    get_engine(url).dispose()


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory: pytest.TempPathFactory, district: geo.District) -> Iterator[str]:
    """One seeded SQLite database for tests that must leave it unchanged."""
    url = _sqlite(tmp_path_factory.mktemp("registry-io"), district)
    yield url
    get_engine(url).dispose()


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[None]:
    """The throwaway cluster; stopped afterwards if it was not running before."""
    if os.environ.get("PRACTICE_CIRCLE_SKIP_POSTGIS") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_POSTGIS=1")
    was_running = postgres_script("status").returncode == 0
    yield
    if not was_running:
        postgres_script("stop")


@pytest.fixture(params=["sqlite", "postgis"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path,
                district: geo.District) -> Iterator[str]:
    """A fresh database of each backend, migrated and seeded with the demo registry.

    Fresh rather than the dispatch tests' session-wide ``db_url``: an import adds and closes
    positions, which would change the registry the other tests read.
    """
    if request.param == "sqlite":
        url = _sqlite(tmp_path, district)
        yield url
        get_engine(url).dispose()
        return
    request.getfixturevalue("postgres_cluster")
    res = postgres_script("start", f"pc_registry_io_{os.getpid()}_{next(_names)}")
    if res.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed ({res.returncode}):\n{res.stderr}")
    url = res.stdout.strip().splitlines()[-1]
    prepare_database(url, district)
    yield url
    get_engine(url).dispose()
    drop_postgres_database(url)


def snapshot(url: str, district: str = "小店区") -> tuple[int, int, int, int]:
    """Registry version, positions, open positions and history lines: all an import touches."""
    with session_maker(url, readonly=True)() as s:
        return (
            registry_version(s, district),
            s.scalar(select(func.count()).select_from(Position)) or 0,
            s.scalar(select(func.count()).select_from(Position)
                     .where(Position.active.is_(True))) or 0,
            s.scalar(select(func.count()).select_from(RegistryChange)) or 0,
        )


def position(url: str, name: str) -> Position:
    with session_maker(url, readonly=True)() as s:
        rows = s.scalars(select(Position).where(Position.name == name)).all()
        assert len(rows) == 1, [r.site_id for r in rows]
        return rows[0]


# --- real places -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def new_places(district: geo.District) -> list[dict[str, Any]]:
    """Two named OSM places of 小店区 that are not positions yet (WGS84 representative points)."""
    used = set(district.positions["osm_id"])
    named = district.places[(district.places["name"] != "") & ~district.places["osm_id"].isin(used)]
    points = named.geometry.to_crs(district.network.crs_metric).representative_point().to_crs(4326)
    out = []
    for (_, place), pt in zip(named.sort_values("osm_id").iterrows(),
                              points.loc[named.sort_values("osm_id").index], strict=True):
        if not pt.within(district.outline):
            continue
        check_place(district, pt.x, pt.y)
        out.append({"name": str(place["name"]), "osm_id": place["osm_id"],
                    "lon": float(pt.x), "lat": float(pt.y)})
        if len(out) == 2:
            return out
    raise AssertionError("fewer than two free named places in the district")


def fill(template: Path, rows: list[list[Any]], out: Path) -> Path:
    """Fill rows into the template under its example row, as an office does in Excel."""
    wb = load_workbook(template)
    ws = wb["阵地登记"]
    for row in rows:
        ws.append(row)
    wb.save(out)
    return out


def office_rows(places: list[dict[str, Any]], crs: str) -> list[list[Any]]:
    """The two places as an office writes them: a 站 under a 所 by name, a 点 with no parent."""
    a, b = places
    ax, ay = from_wgs84(a["lon"], a["lat"], crs=crs)
    bx, by = from_wgs84(b["lon"], b["lat"], crs=crs)
    return [
        [a["name"], "站", "山西省司法厅", "理论政策宣讲；法律服务", "小店区（测试）", ax, ay,
         "周一至周五 09:00-17:00", "0351-7000001"],
        [b["name"], "点", None, "science、敬老助老", None, bx, by, None, None],
    ]


# --- the template ----------------------------------------------------------------------------

def test_template_has_chinese_headers_a_marked_real_example_and_help(
    tmp_path: Path, district: geo.District, shared_url: str
) -> None:
    path = write_template(tmp_path / "template.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["阵地登记", "说明"]
    ws = wb["阵地登记"]
    assert [c.value for c in ws[1]] == [
        "名称", "级别", "上级", "服务类别", "地址", "经度", "纬度", "开放时间", "联系电话"]
    example = [c.value for c in ws[2]]
    assert str(example[0]).startswith("示例") and ws.max_row == 2
    assert ws["A2"].font.italic and ws["A2"].comment is not None
    # The example is a real place of the district: the OSM 山西省体育中心, on its streets.
    sports = district.places[district.places["name"] == "山西省体育中心"]
    pt = sports.geometry.to_crs(district.network.crs_metric).representative_point().to_crs(4326)
    assert metres(pt.iloc[0].x, pt.iloc[0].y, example[5], example[6]) < 1
    check_place(district, float(example[5]), float(example[6]))
    help_rows = [[c.value for c in r] for r in wb["说明"].iter_rows(min_row=2)]
    assert [r[0] for r in help_rows[: len(COLUMNS)]] == HEADERS
    assert any("gcj02" in str(r[0]) for r in help_rows)

    # Imported as it is, the template adds nothing: the example row is skipped by its name.
    before = snapshot(shared_url)
    report = import_registry(shared_url, district, path)
    assert report.skipped == [{"row": 2, "name": EXAMPLE_ROW["name"], "reason": "example"}]
    assert not (report.added or report.changed or report.closed or report.problems)
    assert snapshot(shared_url) == before


# --- adding ----------------------------------------------------------------------------------

def test_gcj02_workbook_adds_two_real_places_in_one_transaction(
    backend_url: str, tmp_path: Path, district: geo.District, new_places: list[dict[str, Any]]
) -> None:
    path = fill(write_template(tmp_path / "t.xlsx"), office_rows(new_places, "gcj02"),
                tmp_path / "filled.xlsx")
    version, n, n_open, n_history = snapshot(backend_url)

    report = import_registry(backend_url, district, path, crs="gcj02")

    assert report.problems == [] and report.applied
    assert [(a["row"], a["name"], a["level"]) for a in report.added] == [
        (3, new_places[0]["name"], "community"), (4, new_places[1]["name"], "site")]
    assert report.unchanged == 0 and report.changed == report.closed == []
    assert snapshot(backend_url) == (version + 2, n + 2, n_open + 2, n_history + 2)
    a, b = (position(backend_url, p["name"]) for p in new_places)
    for row, place in ((a, new_places[0]), (b, new_places[1])):
        assert abs(row.lon - place["lon"]) < 1e-6 and abs(row.lat - place["lat"]) < 1e-6
        assert row.source == "import" and row.active and not row.demo
    assert a.level == "community" and a.categories == "theory,legal"
    assert a.parent_id == position(backend_url, "山西省司法厅").site_id
    assert (a.address, a.opening_hours, a.phone) == (
        "小店区（测试）", "周一至周五 09:00-17:00", "0351-7000001")
    assert b.level == "site" and b.categories == "science,elderly"
    # No parent written: the nearest position one level up, as the demo registry links them.
    with session_maker(backend_url, readonly=True)() as s:
        reg = read_registry(s, district.name).positions
        expected = nearest_parent("site", Point(b.lon, b.lat), reg[reg["site_id"] != b.site_id],
                                  crs=district.network.crs_metric)
        assert b.parent_id == expected and expected is not None
        # The geometry column agrees with lon/lat on both backends.
        x, y = s.execute(select(func.ST_X(Position.geom), func.ST_Y(Position.geom))
                         .where(Position.site_id == a.site_id)).one()
        assert abs(x - a.lon) < 1e-9 and abs(y - a.lat) < 1e-9
        history = s.scalars(select(RegistryChange).where(
            RegistryChange.entity_id.in_([a.site_id, b.site_id]))).all()
    assert {(h.action, h.actor) for h in history} == {("create", "import:filled.xlsx")}

    # The same file again: both rows now match what is there.
    again = import_registry(backend_url, district, path, crs="gcj02")
    assert again.added == again.changed == [] and again.unchanged == 2
    assert snapshot(backend_url) == (version + 2, n + 2, n_open + 2, n_history + 2)


def test_gbk_csv_with_chinese_headers(
    sqlite_url: str, tmp_path: Path, district: geo.District, new_places: list[dict[str, Any]]
) -> None:
    path = tmp_path / "阵地.csv"
    with path.open("w", encoding="gbk", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        for row in office_rows(new_places, "wgs84"):
            w.writerow(["" if v is None else v for v in row])
    assert path.read_bytes().decode("gbk")  # really GBK, not UTF-8
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")

    report = import_registry(sqlite_url, district, path)

    assert report.problems == [] and [a["name"] for a in report.added] == [
        p["name"] for p in new_places]
    a = position(sqlite_url, new_places[0]["name"])
    assert a.categories == "theory,legal" and a.address == "小店区（测试）"
    assert abs(a.lon - new_places[0]["lon"]) < 1e-6


def test_bd09_csv_with_english_headers_and_bom(
    sqlite_url: str, tmp_path: Path, district: geo.District, new_places: list[dict[str, Any]]
) -> None:
    path = tmp_path / "baidu.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.key for c in COLUMNS])
        for p, level in zip(new_places, ("community", "site"), strict=True):
            x, y = from_wgs84(p["lon"], p["lat"], crs="bd09")
            parent = "小店区-T002" if level == "community" else ""  # a parent by id
            w.writerow([p["name"], level, parent, "culture,health", "", x, y, "", ""])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    report = import_registry(sqlite_url, district, path, crs="bd09")

    assert report.problems == [] and len(report.added) == 2
    for p in new_places:
        row = position(sqlite_url, p["name"])
        assert abs(row.lon - p["lon"]) < 1e-6 and abs(row.lat - p["lat"]) < 1e-6
        assert row.categories == "culture,health"
    assert position(sqlite_url, new_places[0]["name"]).parent_id == "小店区-T002"
    # Read as WGS84 the same numbers are the BD-09 offset away (≈ 1 km in Taiyuan): not the place.
    x, y = from_wgs84(new_places[0]["lon"], new_places[0]["lat"], crs="bd09")
    assert metres(x, y, new_places[0]["lon"], new_places[0]["lat"]) > 500


# --- problems --------------------------------------------------------------------------------

def row(name: str, level: str, parent: str | None = None, categories: str | None = None,
        lon: Any = 112.5501, lat: Any = 37.8024) -> list[Any]:
    """A row of the sheet (near the practice center unless told)."""
    return [name, level, parent, categories, None, lon, lat, None, None]


#: A good row (a real OSM place not yet a position), to show a bad one blocks it too.
GOOD = row("山西省长途电信线务局", "点", categories="法律服务", lon=112.549528, lat=37.827281)


BAD_ROWS: dict[str, tuple[list[Any], str, str]] = {
    # kind: (row, column named in the problem, words it must say)
    "unknown level": (row("测试阵地1", "街道"), "级别", "未知的级别“街道”"),
    "unknown category": (row("测试阵地2", "点", categories="理论政策宣讲；跳舞"),
                         "服务类别", "未知的服务类别：跳舞"),
    "parent not found": (row("测试阵地3", "点", parent="不存在的站"),
                         "上级", "上级“不存在的站”不存在"),
    "parent of the wrong level": (row("测试阵地4", "所", parent="太嘉小区"),
                                  "上级", "是站，而所的上级应为中心"),
    "missing coordinates": (row("测试阵地5", "点", lon=None), "经度", "缺少经度"),
    "coordinates not numbers": (row("测试阵地6", "点", lon="东经112度"), "经度", "不是数字"),
    "swapped coordinates": (row("测试阵地7", "点", lon=37.8024, lat=112.5501), "经度", "填反了"),
    "outside the district": (row("测试阵地8", "点", lon=112.60, lat=37.70), "经度", "超出服务范围"),
    "duplicate in the file": (row("山西省长途电信线务局", "点", lon=112.54970, lat=37.82740),
                              "名称", "与第3行重复"),
    "center with a parent": (row("新中心", "中心", parent="山西省司法厅"), "上级", "中心没有上级"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_each_bad_row_is_named_and_nothing_is_written(
    kind: str, shared_url: str, tmp_path: Path, district: geo.District
) -> None:
    bad, column, words = BAD_ROWS[kind]
    path = fill(write_template(tmp_path / "t.xlsx"), [GOOD, bad], tmp_path / "bad.xlsx")
    before = snapshot(shared_url)

    report = import_registry(shared_url, district, path)

    assert [str(p) for p in report.problems] and all(p.row == 4 for p in report.problems), [
        str(p) for p in report.problems]
    text = str(report.problems[0])
    assert text.startswith(f"第4行（{column}）") and words in text, text
    assert not report.applied and report.version_after == report.version_before
    assert snapshot(shared_url) == before  # not even the good row 3


def test_all_problems_at_once_from_the_cli_exit_2(
    shared_url: str, tmp_path: Path, cache_dir: Path
) -> None:
    """A real subprocess: every bad row named on stderr, exit code 2, the registry unchanged."""
    rows = [GOOD, *(r for r, _, _ in BAD_ROWS.values())]
    path = tmp_path / "bad.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows([["" if v is None else v for v in r] for r in rows])
    before = snapshot(shared_url)

    res = run("registry", "import", str(path), "--database-url", shared_url, cache=cache_dir)

    assert res.returncode == 2, res.stdout + res.stderr
    for n in range(3, 3 + len(BAD_ROWS)):
        assert f"第{n}行" in res.stderr, (n, res.stderr)
    assert "error: 第2行" not in res.stderr  # the good row
    assert f"{len(BAD_ROWS)} problem(s) in bad.csv; nothing was imported" in res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(shared_url) == before


def test_unreadable_files_are_one_line_errors(
    shared_url: str, tmp_path: Path, district: geo.District
) -> None:
    cases = {
        "no_header.csv": ("名字,等级\n甲,点\n", "表头缺少列：级别、经度、纬度"),
        "empty.csv": ("", "文件是空的"),
        "not_excel.xlsx": ("名称,级别\n", "无法读取 Excel 文件"),
        "lines.geojson": ('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                          '"geometry": {"type": "LineString", "coordinates": [[112.55, 37.80], '
                          '[112.56, 37.81]]}, "properties": {"name": "甲", "level": "点"}}]}',
                          None),
        "positions.txt": ("", "不支持的文件类型"),
    }
    before = snapshot(shared_url)
    for name, (body, words) in cases.items():
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        if words is None:  # a readable file with a bad feature: a problem with its number
            report = import_registry(shared_url, district, path)
            assert [str(p) for p in report.problems] == [
                "第1个要素：几何类型为 LineString，应为点（Point）"]
            continue
        with pytest.raises(RegistryFileError, match=words):
            import_registry(shared_url, district, path)
    assert snapshot(shared_url) == before


# --- changing, dry runs and closing ----------------------------------------------------------

def test_dry_run_reports_what_the_real_run_then_does(
    backend_url: str, tmp_path: Path, district: geo.District, new_places: list[dict[str, Any]]
) -> None:
    rows = _exported(backend_url, tmp_path / "all.csv")
    by_name = {r["名称"]: r for r in rows}
    park = by_name["唐槐公园"]
    park["联系电话"] = "0351-7000002"
    park["服务类别"] = "医疗健身、卫生环保"
    place = new_places[0]
    rows.append({**park, "名称": place["name"], "级别": "点", "上级": "", "联系电话": "",
                 "经度": place["lon"], "纬度": place["lat"]})
    path = _write_csv(rows, tmp_path / "edited.csv")
    before = snapshot(backend_url)

    dry = import_registry(backend_url, district, path, dry_run=True)

    assert dry.problems == [] and not dry.applied
    assert snapshot(backend_url) == before
    assert [(c["name"], sorted(c["changes"])) for c in dry.changed] == [
        ("唐槐公园", ["categories", "phone"])]
    assert dry.changed[0]["changes"]["phone"] == [None, "0351-7000002"]
    assert [a["name"] for a in dry.added] == [place["name"]]
    assert dry.unchanged == len(district.positions) - 1 and dry.closed == []

    real = import_registry(backend_url, district, path)

    assert real.applied and real.added == dry.added and real.changed == dry.changed
    assert snapshot(backend_url) == (before[0] + 2, before[1] + 1, before[2] + 1, before[3] + 2)
    row = position(backend_url, "唐槐公园")
    assert (row.phone, row.categories, row.source) == (
        "0351-7000002", "health,environment", "import")
    assert row.row_version == 2


def test_replace_closes_what_the_file_leaves_out(
    backend_url: str, tmp_path: Path, district: geo.District
) -> None:
    rows = _exported(backend_url, tmp_path / "all.xlsx")
    dropped = {"晋阳街公园", "唐槐公园"}
    kept = [r for r in rows if r["名称"] not in dropped]
    path = tmp_path / "kept.xlsx"
    export_registry(backend_url, district.name, path)  # a workbook, then rows taken out in Excel
    wb = load_workbook(path)
    ws = wb["阵地登记"]
    for r in range(ws.max_row, 1, -1):
        if ws.cell(r, 1).value in dropped:
            ws.delete_rows(r)
    wb.save(path)
    before = snapshot(backend_url)

    plain = import_registry(backend_url, district, path, dry_run=True)
    assert plain.closed == [] and plain.unchanged == len(kept)

    report = import_registry(backend_url, district, path, replace=True)

    assert report.problems == [] and report.applied
    assert sorted(c["name"] for c in report.closed) == sorted(dropped)
    assert report.added == report.changed == [] and report.unchanged == len(kept)
    assert snapshot(backend_url) == (before[0] + 2, before[1], before[2] - 2, before[3] + 2)
    for name in dropped:
        assert not position(backend_url, name).active
    with session_maker(backend_url, readonly=True)() as s:
        actors = s.scalars(select(RegistryChange.actor).where(
            RegistryChange.action == "close")).all()
    assert actors == ["import:kept.xlsx", "import:kept.xlsx"]


def test_a_failure_while_applying_leaves_nothing_behind(
    backend_url: str, tmp_path: Path, district: geo.District, new_places: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second position fails after the first was written: the first goes too."""
    import api.services.registry_io as registry_io

    real = registry_io.create_position
    calls: list[str] = []

    def flaky(session: Any, district: geo.District, data: dict[str, Any], **kw: Any) -> Position:
        calls.append(data["name"])
        if len(calls) == 2:
            raise RegistryEntryError("测试：写入第二个阵地时出错")
        return real(session, district, data, **kw)

    monkeypatch.setattr(registry_io, "create_position", flaky)
    path = fill(write_template(tmp_path / "t.xlsx"), office_rows(new_places, "wgs84"),
                tmp_path / "filled.xlsx")
    before = snapshot(backend_url)

    report = import_registry(backend_url, district, path)

    assert calls == [p["name"] for p in new_places]
    assert [str(p) for p in report.problems] == ["第4行：测试：写入第二个阵地时出错"]
    assert not report.applied and snapshot(backend_url) == before


def test_replace_refuses_a_parent_it_would_close(
    sqlite_url: str, tmp_path: Path, district: geo.District
) -> None:
    rows = _exported(sqlite_url, tmp_path / "all.csv")
    child = next(r for r in rows if r["级别"] == "点" and r["上级"])
    kept = [r for r in rows if r["名称"] != child["上级"]]
    number = 2 + kept.index(child)
    path = _write_csv(kept, tmp_path / "kept.csv")
    before = snapshot(sqlite_url)

    report = import_registry(sqlite_url, district, path, replace=True)

    assert [str(p) for p in report.problems] == [
        f"第{number}行（上级）：上级“{child['上级']}”不在文件中，将被关闭（--replace）"]
    assert snapshot(sqlite_url) == before


def test_closing_a_position_stops_its_teams_and_rehangs_its_children(
    sqlite_url: str, tmp_path: Path, district: geo.District
) -> None:
    pos = district.positions.set_index("site_id")
    teams = district.teams[district.teams["active"].astype(bool)]
    parents = set(district.positions["parent_id"].dropna())
    seat = next(str(s) for s in teams["site_id"]
                if pos.at[s, "level"] == "community" and s in parents)
    name = str(pos.at[seat, "name"])
    rows = _exported(sqlite_url, tmp_path / "all.csv")
    children = {r["名称"] for r in rows if r["上级"] == name}
    for r in rows:
        if r["名称"] in children:
            r["上级"] = ""  # the office blanks the parent of the 点 under the closing 站
    path = _write_csv([r for r in rows if r["名称"] != name], tmp_path / "kept.csv")

    report = import_registry(sqlite_url, district, path, replace=True)

    assert report.problems == [] and [c["name"] for c in report.closed] == [name]
    assert {c["name"] for c in report.changed} == children and children
    with session_maker(sqlite_url, readonly=True)() as s:
        active = s.scalars(select(Team.active).where(Team.site_id == seat)).all()
        now = read_registry(s, district.name).positions
    assert active and not any(active)
    for child in children:
        row = now[now["name"] == child].iloc[0]
        assert row["parent_id"] != seat
        assert row["parent_id"] == nearest_parent(
            "site", row.geometry, now[now["site_id"] != row["site_id"]],
            crs=district.network.crs_metric)


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "crs"), [(".xlsx", "wgs84"), (".csv", "gcj02"),
                                             (".geojson", "bd09")])
def test_export_then_import_changes_nothing(
    suffix: str, crs: str, shared_url: str, tmp_path: Path, district: geo.District
) -> None:
    path = tmp_path / f"registry{suffix}"
    n = export_registry(shared_url, district.name, path, crs=crs)
    assert n == len(district.positions)
    before = snapshot(shared_url)

    report = import_registry(shared_url, district, path, crs=crs, replace=True)

    assert report.problems == [], [str(p) for p in report.problems]
    assert report.added == report.changed == report.closed == []
    assert report.unchanged == n and report.version_after == report.version_before == before[0]
    assert snapshot(shared_url) == before
    # The datum is written where a reader sees it; a GeoJSON imported in another one is refused.
    if suffix == ".geojson":
        assert json.loads(path.read_text(encoding="utf-8"))["datum"] == crs
        wrong = import_registry(shared_url, district, path, crs="wgs84")
        assert "请加 --crs bd09" in str(wrong.problems[0])


def test_export_xlsx_reads_as_the_office_expects(shared_url: str, tmp_path: Path,
                                                 district: geo.District) -> None:
    path = tmp_path / "registry.xlsx"
    export_registry(shared_url, district.name, path)
    ws = load_workbook(path)["阵地登记"]
    assert [c.value for c in ws[1]] == HEADERS
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    center = next(r for r in rows.values() if r[1] == "中心")
    assert center[2] is None and "理论政策宣讲" in str(center[3])
    station = rows["太嘉小区"]
    demo = district.positions.set_index("name").loc["太嘉小区"]
    parent = district.positions.set_index("site_id").at[demo["parent_id"], "name"]
    assert station[1] == "站" and station[2] == parent
    assert abs(station[5] - demo.geometry.x) < 1e-6 and abs(station[6] - demo.geometry.y) < 1e-6


# --- the office's loop through the real CLI --------------------------------------------------

def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PRACTICE_CIRCLE_CACHE": str(cache), "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full, timeout=300,
                          check=False)


def test_cli_template_fill_import_then_coverage_counts_them(
    sqlite_url: str, tmp_path: Path, cache_dir: Path, district: geo.District,
    new_places: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "阵地登记.xlsx"
    made = CliRunner().invoke(app, ["registry", "template", "--out", str(template)])
    assert made.exit_code == 0 and "示例" in made.stdout, made.output
    filled = fill(template, office_rows(new_places, "gcj02"), tmp_path / "filled.xlsx")

    res = run("registry", "import", str(filled), "--crs", "gcj02", "--database-url", sqlite_url,
              cache=cache_dir)

    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == ("小店区 ← filled.xlsx (gcj02): 2 to add, 0 to change, 0 to close, "
                        "0 unchanged")
    assert f"+ 第3行 站 {new_places[0]['name']} → 小店区-S019，上级 山西省司法厅" in lines
    assert any(line.startswith(f"+ 第4行 点 {new_places[1]['name']} → 小店区-P019")
               for line in lines)
    assert "  第2行 是示例（示例：山西省体育中心），已跳过" in lines
    assert lines[-1] == "applied: registry version 1 → 3"

    # coverage reads the database the environment names (in-process: the imports are paid).
    monkeypatch.setenv("PRACTICE_CIRCLE_DATABASE_URL", sqlite_url)
    cov = CliRunner().invoke(app, ["coverage", "--json", "--cache", str(cache_dir)])
    assert cov.exit_code == 0, cov.output
    out = json.loads(cov.stdout)
    assert out["sites"] == len(district.positions) + 2
    assert out["sites_by_level"]["community"] == (district.positions["level"] == "community"
                                                  ).sum() + 1


def test_cli_export_import_round_trip_and_json(
    sqlite_url: str, tmp_path: Path, cache_dir: Path
) -> None:
    """In-process CLI runs (the subprocess cost is paid above): export, then import --json."""
    runner = CliRunner()
    out = tmp_path / "registry.csv"
    res = runner.invoke(app, ["registry", "export", "--out", str(out), "--crs", "gcj02",
                              "--database-url", sqlite_url, "--cache", str(cache_dir)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"wrote 40 open positions of 小店区 to {out} (gcj02)"
    assert out.read_bytes().startswith(b"\xef\xbb\xbf" + "名称,级别,上级".encode())

    res = runner.invoke(app, ["registry", "import", str(out), "--crs", "gcj02", "--replace",
                              "--dry-run", "--json", "--database-url", sqlite_url,
                              "--cache", str(cache_dir)])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert (body["added"], body["changed"], body["closed"], body["unchanged"]) == ([], [], [], 40)
    assert body["dry_run"] and not body["applied"] and body["problems"] == []

    res = runner.invoke(app, ["registry", "import", str(out), "--crs", "mars",
                              "--database-url", sqlite_url, "--cache", str(cache_dir)])
    assert res.exit_code == 2 and "unknown datum 'mars'" in res.output
    res = runner.invoke(app, ["registry", "export", "--out", str(tmp_path / "x.shp"),
                              "--database-url", sqlite_url, "--cache", str(cache_dir)])
    assert res.exit_code == 2 and "不支持的文件类型 .shp" in res.output


# --- helpers ---------------------------------------------------------------------------------

def _exported(url: str, path: Path) -> list[dict[str, Any]]:
    """The registry as an office gets it: exported, then read back as rows of the CSV."""
    csv_path = path.with_suffix(".csv")
    export_registry(url, "小店区", csv_path)
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADERS)
        w.writeheader()
        w.writerows(rows)
    return path
