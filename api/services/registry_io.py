"""Import and export a district's registry as an office keeps it: a spreadsheet, CSV or GeoJSON.

An office fills in one row per practice position (中心/所/站/点) with these columns:

=============  ==========  ============================================================
English        中文        what
=============  ==========  ============================================================
name           名称        required; the match key together with the place
level          级别        中心 所 站 点 (or center township community site)
parent         上级        the parent's name or id; empty: a new position hangs under the
                           nearest position one level up, an existing one keeps its parent
categories     服务类别    category codes or Chinese names, separated by ; ； 、 , ，
address        地址        optional
lon, lat       经度, 纬度  required; in ``--crs`` (WGS84, GCJ-02 of Amap/Tencent/WeChat or
                           BD-09 of Baidu), stored as WGS84
opening_hours  开放时间    optional
phone          联系电话    optional, public
=============  ==========  ============================================================

Files: ``.xlsx`` (the sheet 阵地登记, else the first one), ``.csv`` (UTF-8 with or without BOM,
or GBK/GB18030), or GeoJSON points with the English names as properties. A row whose name
starts with 示例 is the template's example and is skipped.

Each row is matched to an open position of the district with the same name within
:data:`MATCH_M` metres: "changed" when a field differs, otherwise unchanged; an unmatched row is
"added"; with ``replace`` the open positions no row matched are "closed". Every problem is
collected with the row number the office sees (the spreadsheet row, header = row 1; the feature
number in GeoJSON). The plan is made and applied through :mod:`api.services.registry` in one
transaction, which is committed only when there is no problem and it is not a dry run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from pyproj import Geod
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services.dispatch_errors import NotFoundError
from api.services.registry import (
    RegistryEntryError,
    check_categories,
    check_place,
    close_position,
    create_position,
    update_position,
)
from api.storage.models import Position, RegistryVersion
from api.storage.registry import registry_version
from api.storage.session import session_maker
from geo import District
from geo._errors import OutOfAreaError, UnknownCategoryError
from geo.categories import CATEGORIES
from geo.datum import Crs, from_wgs84, to_wgs84
from geo.registry import LEVELS, PARENT_LEVELS

#: Rows with the same name this close (metres) are the same position.
MATCH_M = 50.0
#: A position moved less than this (metres) has not moved (coordinates written with 7 decimals
#: and the datum inverses, < 1e-7°, stay far below it).
MOVE_M = 0.5
#: Rows whose name starts with this are examples (the template's) and are not imported.
EXAMPLE_PREFIX = "示例"
#: Most data rows a file may hold.
MAX_ROWS = 20_000
#: The sheet of positions in a workbook (and the sheet that explains the columns).
SHEET = "阵地登记"
HELP_SHEET = "说明"
#: Longitude and latitude ranges of China, to tell swapped or missing coordinates.
CHINA_LON = (73.0, 135.0)
CHINA_LAT = (18.0, 54.0)
#: Decimals of written coordinates (about 1 cm).
DECIMALS = 7

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Column:
    """One column of the registry file."""

    key: str
    zh: str
    rule: str
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("name", "名称", "必填。与已登记阵地同名且相距不超过 50 米即视为同一阵地；"
           "名称以“示例”开头的行不导入", ("名字", "阵地名称")),
    Column("level", "级别", "必填：中心、所、站、点（也可写 center、township、community、site）",
           ("层级",)),
    Column("parent", "上级", "上级阵地的名称或编号。留空：新阵地挂在最近的上一级阵地下，"
           "已登记的阵地保持原上级。中心没有上级", ("parent_id", "上级阵地")),
    Column("categories", "服务类别", "类别名称或代码，用 ；、，或 , 分隔。可选："
           + "、".join(c.name for c in CATEGORIES), ("category", "类别")),
    Column("address", "地址", "选填", ("地点",)),
    Column("lon", "经度", "必填，十进制度（中国境内 73–135）", ("lng", "longitude", "x")),
    Column("lat", "纬度", "必填，十进制度（中国境内 18–54）", ("latitude", "y")),
    Column("opening_hours", "开放时间", "选填，如 周一至周五 09:00-17:00", ("开放时段",)),
    Column("phone", "联系电话", "选填，对外公开的电话", ("电话", "tel", "telephone")),
)
_BY_KEY = {c.key: c for c in COLUMNS}
_REQUIRED = ("name", "level", "lon", "lat")

#: The short Chinese word of each level, as an office writes it.
LEVEL_SHORT: dict[str, str] = {"center": "中心", "township": "所", "community": "站", "site": "点"}
_LEVEL_WORDS: dict[str, str] = {
    **{k: k for k in LEVELS}, **{v: k for k, v in LEVEL_SHORT.items()},
    **{v: k for k, v in LEVELS.items()},
    **{v.removeprefix("新时代文明"): k for k, v in LEVELS.items()},
}
_LEVEL_RANK = {k: i for i, k in enumerate(LEVELS)}
_CATEGORY_WORDS: dict[str, str] = {
    **{str(c.code): str(c.code) for c in CATEGORIES}, **{c.name: str(c.code) for c in CATEGORIES},
}
_CATEGORY_NAMES: dict[str, str] = {str(c.code): c.name for c in CATEGORIES}
_SEPARATORS = re.compile(r"[;；、,，\s]+")

#: The template's example row: a real place of 小店区 (山西省体育中心, its OSM outline's
#: representative point, WGS84).
EXAMPLE_ROW: dict[str, Any] = {
    "name": f"{EXAMPLE_PREFIX}：山西省体育中心", "level": "点", "parent": "",
    "categories": "医疗健身、文化文艺服务", "address": "太原市小店区（示例）",
    "lon": 112.5604592, "lat": 37.8279188, "opening_hours": "周一至周日 08:00-20:00",
    "phone": "",
}


class RegistryFileError(ValueError):
    """A file that cannot be read as a registry at all (format, encoding, missing columns)."""


@dataclass(frozen=True)
class Problem:
    """A row that cannot go in as written."""

    row: int | None
    message: str
    column: str | None = None
    unit: str = "行"

    def __str__(self) -> str:
        where = f"第{self.row}{self.unit}" if self.row is not None else "文件"
        col = f"（{_BY_KEY[self.column].zh}）" if self.column in _BY_KEY else ""
        return f"{where}{col}：{self.message}"

    def to_json(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready object."""
        return {"row": self.row, "column": self.column, "message": self.message,
                "text": str(self)}


@dataclass
class Entry:
    """One checked row: values as stored (WGS84, category codes, level code)."""

    row: int
    name: str
    level: str
    parent: str | None
    categories: str
    address: str | None
    opening_hours: str | None
    phone: str | None
    lon: float
    lat: float


@dataclass
class RegistryFile:
    """The rows of a file as read, before any check."""

    rows: list[tuple[int, dict[str, Any]]]
    unit: str
    notes: list[str] = field(default_factory=list)
    #: The datum a GeoJSON file says its coordinates are in (this module's exports say it).
    datum: str | None = None


@dataclass
class ImportReport:
    """What an import did (or, in a dry run or with problems, would have done)."""

    district: str
    file: str
    crs: str
    dry_run: bool
    replace: bool
    unit: str = "行"
    applied: bool = False
    version_before: int = 0
    version_after: int = 0
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the report as one JSON-ready object."""
        return {
            "district": self.district, "file": self.file, "crs": self.crs,
            "dry_run": self.dry_run, "replace": self.replace, "applied": self.applied,
            "version_before": self.version_before, "version_after": self.version_after,
            "added": self.added, "changed": self.changed, "closed": self.closed,
            "unchanged": self.unchanged, "skipped": self.skipped,
            "problems": [p.to_json() for p in self.problems], "notes": self.notes,
        }


# --- reading files ---------------------------------------------------------------------------

def _header_key(value: Any) -> str | None:
    text = re.split(r"[(（]", str(value or ""))[0].strip().lower().replace(" ", "")
    for c in COLUMNS:
        if text in (c.key, c.zh, *c.aliases):
            return c.key
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _table(records: list[tuple[int, list[Any]]], unit: str) -> RegistryFile:
    """Turn numbered records (header first) into rows keyed by column."""
    filled = [(n, r) for n, r in records if not all(_blank(v) for v in r)]
    if not filled:
        msg = ("文件是空的：第一行应为表头（名称、级别、上级、服务类别、地址、经度、纬度、"
               "开放时间、联系电话）")
        raise RegistryFileError(msg)
    _, header = filled[0]
    keys = [_header_key(h) for h in header]
    missing = [_BY_KEY[k].zh for k in _REQUIRED if k not in keys]
    if missing:
        msg = (f"表头缺少列：{'、'.join(missing)}（第一行应为表头：名称、级别、上级、服务类别、"
               "地址、经度、纬度、开放时间、联系电话；或 name, level, parent, categories, address, "
               "lon, lat, opening_hours, phone）")
        raise RegistryFileError(msg)
    notes = []
    ignored = [str(h) for h, k in zip(header, keys, strict=True) if k is None and not _blank(h)]
    if ignored:
        notes.append(f"忽略未知的列：{'、'.join(ignored)}")
    seen: set[str] = set()
    for h, k in zip(header, keys, strict=True):
        if k is not None and k in seen:
            msg = f"表头中“{h}”重复"
            raise RegistryFileError(msg)
        if k is not None:
            seen.add(k)
    rows = []
    for number, record in filled[1:]:
        values = {k: v for k, v in zip(keys, record, strict=False) if k is not None}
        rows.append((number, values))
    if len(rows) > MAX_ROWS:
        msg = f"行数过多（{len(rows)}），最多 {MAX_ROWS} 行"
        raise RegistryFileError(msg)
    return RegistryFile(rows=rows, unit=unit, notes=notes)


def _read_xlsx(path: Path) -> RegistryFile:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
        msg = f"无法读取 Excel 文件 {path.name}：{e}"
        raise RegistryFileError(msg) from e
    try:
        ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
        records: list[tuple[int, list[Any]]] = []
        for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            records.append((number, list(values)))
            if number > MAX_ROWS + 100:
                break
    finally:
        wb.close()
    return _table(records, "行")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    msg = "无法识别 CSV 文件的编码：请存为 UTF-8 或 GBK"
    raise RegistryFileError(msg)


def _read_csv(path: Path) -> RegistryFile:
    text = _decode(path.read_bytes())
    try:
        records = [(i, list(r)) for i, r in enumerate(csv.reader(io.StringIO(text)), start=1)]
    except csv.Error as e:
        msg = f"无法读取 CSV 文件 {path.name}：{e}"
        raise RegistryFileError(msg) from e
    return _table(records, "行")


def _read_geojson(path: Path) -> RegistryFile:
    try:
        doc = json.loads(_decode(path.read_bytes()))
    except json.JSONDecodeError as e:
        msg = f"无法读取 GeoJSON 文件 {path.name}：{e}"
        raise RegistryFileError(msg) from e
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        msg = "GeoJSON 文件应为 FeatureCollection"
        raise RegistryFileError(msg)
    if len(doc["features"]) > MAX_ROWS:
        msg = f"要素过多（{len(doc['features'])}），最多 {MAX_ROWS} 个"
        raise RegistryFileError(msg)
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, feature in enumerate(doc["features"], start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        values: dict[str, Any] = {}
        for k, v in (props or {}).items() if isinstance(props, dict) else ():
            key = _header_key(k)
            if key is not None:
                values[key] = v
        geom = feature.get("geometry") if isinstance(feature, dict) else None
        if isinstance(geom, dict) and geom.get("type") == "Point":
            coords = geom.get("coordinates")
            if isinstance(coords, list) and len(coords) >= 2:
                values["lon"], values["lat"] = coords[0], coords[1]
        elif geom is not None:
            kind = geom.get("type") if isinstance(geom, dict) else type(geom).__name__
            values["_geometry"] = str(kind)
        rows.append((number, values))
    datum = doc.get("datum")
    return RegistryFile(rows=rows, unit="个要素", datum=str(datum) if datum else None)


def read_file(path: str | Path) -> RegistryFile:
    """Read the rows of an ``.xlsx``, ``.csv`` or ``.geojson``/``.json`` registry file.

    Raises
    ------
    RegistryFileError
        If the file cannot be read, has another format, or lacks a required column.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        msg = f"找不到文件 {path}"
        raise RegistryFileError(msg)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".geojson", ".json"):
        return _read_geojson(path)
    msg = f"不支持的文件类型 {suffix or path.name}：请用 .xlsx、.csv 或 .geojson"
    raise RegistryFileError(msg)


# --- checking rows ---------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number Excel stored as a number
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip().replace("，", ".").replace("°", ""))
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def parse_level(value: Any) -> str | None:
    """Return the level code of 中心/所/站/点, their full names or the English codes."""
    text = _text(value)
    return _LEVEL_WORDS.get(text.lower() if text.isascii() else text) if text else None


def parse_categories(value: Any) -> tuple[list[str], list[str]]:
    """Split a categories cell; return the codes found and the words that are not categories."""
    codes, unknown = [], []
    for word in _SEPARATORS.split(_text(value) or ""):
        if not word:
            continue
        code = _CATEGORY_WORDS.get(word.lower() if word.isascii() else word)
        if code is None:
            unknown.append(word)
        elif code not in codes:
            codes.append(code)
    return codes, unknown


def _length(key: str) -> int | None:
    """Return the longest text a position's column holds."""
    return getattr(Position.__table__.c[key].type, "length", None)


def _coordinates(number: int, unit: str, values: dict[str, Any], crs: Crs
                 ) -> tuple[tuple[float, float] | None, list[Problem]]:
    if "_geometry" in values:
        return None, [Problem(number, f"几何类型为 {values['_geometry']}，应为点（Point）",
                              unit=unit)]
    problems = []
    raw = {k: values.get(k) for k in ("lon", "lat")}
    nums: dict[str, float | None] = {}
    for key, v in raw.items():
        if _blank(v):
            problems.append(Problem(number, f"缺少{_BY_KEY[key].zh}", key, unit))
            nums[key] = None
            continue
        nums[key] = _number(v)
        if nums[key] is None:
            problems.append(Problem(number, f"{_BY_KEY[key].zh}“{v}”不是数字", key, unit))
    lon, lat = nums["lon"], nums["lat"]
    if problems or lon is None or lat is None:
        return None, problems
    lon_ok = CHINA_LON[0] <= lon <= CHINA_LON[1]
    lat_ok = CHINA_LAT[0] <= lat <= CHINA_LAT[1]
    if not lon_ok and not lat_ok and (CHINA_LON[0] <= lat <= CHINA_LON[1]
                                      and CHINA_LAT[0] <= lon <= CHINA_LAT[1]):
        return None, [Problem(number, f"经度 {lon:g} 与纬度 {lat:g} 填反了（在中国经度为 "
                              "73–135，纬度为 18–54）", "lon", unit)]
    if not lon_ok:
        problems.append(Problem(number, f"经度 {lon:g} 不在中国境内（73–135）", "lon", unit))
    if not lat_ok:
        problems.append(Problem(number, f"纬度 {lat:g} 不在中国境内（18–54）", "lat", unit))
    if problems:
        return None, problems
    return to_wgs84(lon, lat, crs=crs), []


def check_row(district: District, number: int, values: dict[str, Any], *, crs: Crs,
              unit: str = "行") -> tuple[Entry | None, list[Problem]]:
    """Check one row as read; return it as stored (WGS84, codes) or the problems it has."""
    problems: list[Problem] = []
    name = _text(values.get("name"))
    if name is None:
        problems.append(Problem(number, "缺少名称", "name", unit))
    level = parse_level(values.get("level"))
    if level is None:
        raw = _text(values.get("level"))
        problems.append(Problem(
            number, (f"未知的级别“{raw}”" if raw else "缺少级别")
            + "；可选：中心、所、站、点（center、township、community、site）", "level", unit))
    codes, unknown = parse_categories(values.get("categories"))
    if unknown:
        problems.append(Problem(
            number, f"未知的服务类别：{'、'.join(unknown)}；可选："
            + "、".join(f"{c.name}（{c.code}）" for c in CATEGORIES), "categories", unit))
    texts = {k: _text(values.get(k)) for k in ("address", "opening_hours", "phone", "parent")}
    for key, text in [("name", name), *texts.items()]:
        limit = _length("parent_id" if key == "parent" else key)
        if text is not None and limit is not None and len(text) > limit:
            problems.append(Problem(number, f"{_BY_KEY[key].zh}过长（{len(text)} 字，"
                                    f"最多 {limit} 字）", key, unit))
    place, bad = _coordinates(number, unit, values, crs)
    problems += bad
    if place is not None:
        try:
            check_place(district, *place)
        except OutOfAreaError as e:
            typed = "" if crs is Crs.WGS84 else (
                f"（{crs.value} 坐标 {_number(values['lon']):g}, {_number(values['lat']):g} "
                "换算为 WGS84 后）")
            problems.append(Problem(number, f"{e}{typed}", "lon", unit))
    if problems or name is None or level is None or place is None:
        return None, problems
    return Entry(row=number, name=name, level=level, parent=texts["parent"],
                 categories=check_categories(codes), address=texts["address"],
                 opening_hours=texts["opening_hours"], phone=texts["phone"],
                 lon=place[0], lat=place[1]), []


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the geodesic distance between two WGS84 positions in metres."""
    return float(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


# --- planning and applying -------------------------------------------------------------------

@dataclass
class _Parent:
    """Where a row's parent is: an existing position, a new row, kept, or the nearest one."""

    site_id: str | None = None
    entry: int | None = None  # index of a new entry
    keep: bool = False
    #: The nearest position one level up, found when the row is written.
    nearest: bool = False


@dataclass(frozen=True)
class _Candidate:
    """A position a parent cell may mean: an open position or a new row of the file."""

    name: str
    level: str
    lon: float
    lat: float
    target: _Parent
    closing: bool = False


def _candidates(entries: list[Entry], matched: dict[int, Position], open_now: list[Position],
                closing: set[str]) -> dict[str, list[_Candidate]]:
    """Index what a parent cell may name: open positions by id and by name, new rows by name.

    A matched position takes the level its row gives it.
    """
    level_of = {p.site_id: entries[i].level for i, p in matched.items()}
    index: dict[str, list[_Candidate]] = {}
    for p in open_now:
        c = _Candidate(p.name, level_of.get(p.site_id, p.level), p.lon, p.lat,
                       _Parent(site_id=p.site_id), p.site_id in closing)
        index.setdefault(p.site_id, []).append(c)
        if p.name != p.site_id:
            index.setdefault(p.name, []).append(c)
    for i, e in enumerate(entries):
        if i not in matched:
            index.setdefault(e.name, []).append(
                _Candidate(e.name, e.level, e.lon, e.lat, _Parent(entry=i)))
    return index


def _plan_parent(i: int, e: Entry, current: Position | None,
                 index: dict[str, list[_Candidate]], closing: set[str], unit: str
                 ) -> tuple[_Parent, Problem | None]:
    allowed = PARENT_LEVELS[e.level]
    if e.parent is None:  # kept, unless the level changes or the parent closes
        if not allowed:
            return _Parent(keep=True), None
        keep = (current is not None and current.level == e.level
                and current.parent_id not in closing)
        return _Parent(keep=keep, nearest=not keep), None
    if not allowed:
        return _Parent(), Problem(e.row, f"{LEVEL_SHORT[e.level]}没有上级，请留空", "parent", unit)
    named = [c for c in index.get(e.parent, []) if c.target.entry != i]
    found = [c for c in named if not c.closing]
    if not found:
        closes = any(c.closing for c in named)
        why = "不在文件中，将被关闭（--replace）" if closes else "不存在（按名称或编号查找）"
        return _Parent(), Problem(e.row, f"上级“{e.parent}”{why}", "parent", unit)
    fit = [c for c in found if c.level in allowed]
    if not fit:
        levels = "、".join(sorted({LEVEL_SHORT[c.level] for c in found}))
        want = "或".join(LEVEL_SHORT[a] for a in allowed)
        return _Parent(), Problem(
            e.row, f"上级“{e.parent}”是{levels}，而{LEVEL_SHORT[e.level]}的上级应为{want}",
            "parent", unit)
    for c in fit:  # a name several positions share: the one it hangs under now
        if current is not None and c.target.site_id == current.parent_id:
            return c.target, None
    fit.sort(key=lambda c: metres(e.lon, e.lat, c.lon, c.lat))
    return fit[0].target, None


def _diff(e: Entry, p: Position, parent: _Parent) -> dict[str, list[Any]]:
    diff: dict[str, list[Any]] = {}
    if e.level != p.level:
        diff["level"] = [p.level, e.level]
    if e.categories != (p.categories or ""):
        diff["categories"] = [p.categories, e.categories]
    for key in ("address", "opening_hours", "phone"):
        old = getattr(p, key) or None
        if getattr(e, key) != old:
            diff[key] = [old, getattr(e, key)]
    if metres(p.lon, p.lat, e.lon, e.lat) > MOVE_M:
        diff["lon"] = [p.lon, e.lon]
        diff["lat"] = [p.lat, e.lat]
    if parent.entry is not None or (parent.site_id is not None
                                    and parent.site_id != p.parent_id):
        diff["parent_id"] = [p.parent_id, parent.site_id]
    elif parent.nearest:  # a new level or a closing parent: the nearest one level up
        diff["parent_id"] = [p.parent_id, None]
    return diff


def _duplicates(entries: list[Entry], unit: str) -> list[Problem]:
    problems = []
    by_name: dict[str, list[Entry]] = {}
    for e in entries:
        for other in by_name.get(e.name, []):
            d = metres(e.lon, e.lat, other.lon, other.lat)
            if d <= MATCH_M:
                problems.append(Problem(
                    e.row, f"与第{other.row}{unit}重复：同名“{e.name}”且相距 {d:.0f} 米",
                    "name", unit))
                break
        by_name.setdefault(e.name, []).append(e)
    return problems


def _match(entries: list[Entry], open_now: list[Position], unit: str
           ) -> tuple[dict[int, Position], list[Problem]]:
    by_name: dict[str, list[Position]] = {}
    for p in open_now:
        by_name.setdefault(p.name, []).append(p)
    matched: dict[int, Position] = {}
    claimed: dict[str, int] = {}
    problems = []
    for i, e in enumerate(entries):
        near = sorted(
            ((metres(p.lon, p.lat, e.lon, e.lat), p) for p in by_name.get(e.name, [])),
            key=lambda t: t[0],
        )
        near = [(d, p) for d, p in near if d <= MATCH_M]
        free = [(d, p) for d, p in near if p.site_id not in claimed]
        if free:
            matched[i] = free[0][1]
            claimed[free[0][1].site_id] = e.row
        elif near:
            p = near[0][1]
            problems.append(Problem(e.row, f"与第{claimed[p.site_id]}{unit}对应同一个阵地 "
                                    f"{p.site_id}（{p.name}）", "name", unit))
    return matched, problems


def _position_json(p: Position, names: dict[str, str]) -> dict[str, Any]:
    return {"site_id": p.site_id, "name": p.name, "level": p.level,
            "parent_id": p.parent_id, "parent": names.get(p.parent_id or ""),
            "categories": p.categories, "lon": p.lon, "lat": p.lat}


def import_registry(url: str, district: District, path: str | Path, *, crs: Crs | str = Crs.WGS84,
                    dry_run: bool = False, replace: bool = False) -> ImportReport:
    """Read a registry file and bring the district's registry in line with it.

    Parameters
    ----------
    url
        Database URL.
    district
        The district (its walking network bounds where a position may be).
    path
        ``.xlsx``, ``.csv`` or ``.geojson`` file.
    crs
        Datum of the file's coordinates.
    dry_run
        Report what would change, write nothing.
    replace
        Close the district's open positions that no row matches.

    Returns
    -------
    ImportReport
        Added, changed and closed positions, or the problems; written only when
        ``report.applied``.

    Raises
    ------
    RegistryFileError
        If the file cannot be read at all.
    """
    path = Path(path)
    crs = Crs(crs)
    sheet = read_file(path)
    report = ImportReport(district=district.name, file=path.name, crs=crs.value,
                          dry_run=dry_run, replace=replace, unit=sheet.unit, notes=sheet.notes)
    if sheet.datum is not None and sheet.datum.lower() != crs.value:
        report.problems.append(Problem(
            None, f"声明坐标系为 {sheet.datum}，而导入用的是 {crs.value}："
            f"请加 --crs {sheet.datum}"))
    entries: list[Entry] = []
    for number, values in sheet.rows:
        if (_text(values.get("name")) or "").startswith(EXAMPLE_PREFIX):
            report.skipped.append({"row": number, "name": _text(values.get("name")),
                                   "reason": "example"})
            continue
        entry, problems = check_row(district, number, values, crs=crs, unit=sheet.unit)
        report.problems += problems
        if entry is not None:
            entries.append(entry)
    report.problems += _duplicates(entries, sheet.unit)

    session = session_maker(url)()
    try:
        _apply(session, district, entries, report, actor=f"import:{path.name}")
        if report.problems or dry_run:
            session.rollback()
            report.version_after = report.version_before
        else:
            session.commit()
            report.applied = True
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    report.problems.sort(key=lambda p: (p.row or 0))
    return report


def _apply(session: Session, district: District, entries: list[Entry], report: ImportReport,
           *, actor: str) -> None:
    """Plan and apply the import in the session's transaction; fill ``report``."""
    unit = report.unit
    # Registry writers queue here (PostgreSQL); SQLite's BEGIN IMMEDIATE does it already.
    session.execute(select(RegistryVersion).where(RegistryVersion.district == district.name)
                    .with_for_update())
    report.version_before = registry_version(session, district.name)
    open_now = list(session.scalars(
        select(Position).where(Position.district == district.name, Position.active.is_(True))
        .order_by(Position.site_id)))
    names = {p.site_id: p.name for p in open_now}
    matched, problems = _match(entries, open_now, unit)
    report.problems += problems
    claimed = {p.site_id for p in matched.values()}
    closing = {p.site_id for p in open_now if p.site_id not in claimed} if report.replace else set()
    parents: dict[int, _Parent] = {}
    index = _candidates(entries, matched, open_now, closing)
    for i, e in enumerate(entries):
        parent, problem = _plan_parent(i, e, matched.get(i), index, closing, unit)
        parents[i] = parent
        if problem is not None:
            report.problems.append(problem)
    if report.problems:
        return

    for p in open_now:
        if p.site_id in closing:
            report.closed.append({"site_id": p.site_id, "name": p.name, "level": p.level})
            close_position(session, district, p.site_id, actor=actor)
    created: dict[int, str] = {}
    order = sorted(range(len(entries)), key=lambda i: (_LEVEL_RANK[entries[i].level],
                                                       entries[i].row))
    for i in order:
        e, parent = entries[i], parents[i]
        parent_id = parent.site_id if parent.entry is None else created.get(parent.entry)
        try:
            if i in matched:
                p = matched[i]
                diff = _diff(e, p, parent)
                if not diff:
                    report.unchanged += 1
                    continue
                changes = {k: (parent_id if k == "parent_id" else getattr(e, k))
                           for k in diff}
                before = {k: v[0] for k, v in diff.items()}
                update_position(session, district, p.site_id, changes, actor=actor,
                                source="import")
                report.changed.append({
                    "row": e.row, "site_id": p.site_id, "name": p.name,
                    "changes": {k: [before[k], getattr(p, k)] for k in diff},
                })
            else:
                row = create_position(session, district, {
                    "name": e.name, "level": e.level, "parent_id": parent_id,
                    "categories": e.categories.split(",") if e.categories else [],
                    "lon": e.lon, "lat": e.lat, "address": e.address,
                    "opening_hours": e.opening_hours, "phone": e.phone,
                }, actor=actor, source="import")
                created[i] = row.site_id
                names[row.site_id] = row.name
                report.added.append({"row": e.row, **_position_json(row, names)})
        except (RegistryEntryError, UnknownCategoryError, OutOfAreaError, NotFoundError) as err:
            report.problems.append(Problem(e.row, str(err).strip("'\""), None, unit))
    for item in report.changed:
        if "parent_id" in item["changes"]:
            item["parent"] = names.get(item["changes"]["parent_id"][1] or "")
    report.version_after = registry_version(session, district.name)


# --- writing files ---------------------------------------------------------------------------

def export_rows(session: Session, district: str, *, crs: Crs | str = Crs.WGS84,
                chinese: bool = True) -> list[dict[str, Any]]:
    """Return the district's open positions as file rows (keys: :data:`COLUMNS` keys).

    ``chinese`` writes the level as 中心/所/站/点 and categories as Chinese names joined by
    、 (for spreadsheets); otherwise level codes and category codes joined by commas.
    """
    rows = session.scalars(
        select(Position).where(Position.district == district, Position.active.is_(True))
    ).all()
    names = {p.site_id: p.name for p in rows}
    out = []
    for p in sorted(rows, key=lambda r: (_LEVEL_RANK.get(r.level, 9), r.site_id)):
        lon, lat = from_wgs84(p.lon, p.lat, crs=crs)
        codes = [c for c in (p.categories or "").split(",") if c]
        out.append({
            "name": p.name,
            "level": LEVEL_SHORT.get(p.level, p.level) if chinese else p.level,
            "parent": names.get(p.parent_id or "", ""),
            "categories": ("、".join(_CATEGORY_NAMES.get(c, c) for c in codes) if chinese
                           else ",".join(codes)),
            "address": p.address or "", "lon": round(lon, DECIMALS), "lat": round(lat, DECIMALS),
            "opening_hours": p.opening_hours or "", "phone": p.phone or "",
        })
    return out


_HEADER_FILL = PatternFill("solid", fgColor="FFD9E1F2")
_EXAMPLE_FONT = Font(italic=True, color="FF808080")


def _sheet(wb: Workbook, rows: list[dict[str, Any]], *, example: bool) -> None:
    ws = wb.active
    assert isinstance(ws, Worksheet)
    ws.title = SHEET
    ws.append([c.zh for c in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
    for row in rows:
        ws.append([row[c.key] if row[c.key] != "" else None for c in COLUMNS])
    widths = {"name": 28, "parent": 22, "categories": 30, "address": 30, "opening_hours": 22,
              "phone": 16, "lon": 14, "lat": 14, "level": 8}
    for i, c in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(c.key, 12)
        ws.cell(row=1, column=i).comment = Comment(c.rule, "practice-circle")
    ws.freeze_panes = "A2"
    level_col = get_column_letter([c.key for c in COLUMNS].index("level") + 1)
    check = DataValidation(type="list", formula1='"中心,所,站,点"', allow_blank=True,
                           showErrorMessage=True, errorTitle="级别",
                           error="请填 中心、所、站 或 点")
    ws.add_data_validation(check)
    check.add(f"{level_col}2:{level_col}{MAX_ROWS}")
    if example:
        for cell in ws[2]:
            cell.font = _EXAMPLE_FONT
        ws["A2"].comment = Comment(
            "示例行：名称以“示例”开头的行导入时跳过。照此填写后可删除本行。", "practice-circle")
    for r in range(2, ws.max_row + 1):
        for key in ("lon", "lat"):
            ws.cell(row=r, column=[c.key for c in COLUMNS].index(key) + 1).number_format = (
                "0.0000000")


def _help_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(HELP_SHEET)
    ws.append(["列", "英文列名", "填写要求"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
    for c in COLUMNS:
        ws.append([c.zh, c.key, c.rule])
    ws.append([])
    for line in (
        "坐标系：默认 WGS84（GPS、OpenStreetMap）。从高德、腾讯、微信地图取的坐标是 GCJ-02，"
        "导入时加 --crs gcj02；百度地图是 BD-09，加 --crs bd09。入库一律存为 WGS84。",
        f"名称以“{EXAMPLE_PREFIX}”开头的行是示例，导入时跳过。",
        "同名且相距不超过 50 米的行视为已登记的同一阵地：字段不同则更新，相同则不变；"
        "其余行新增。加 --replace 时，文件中没有的已登记阵地将被关闭。",
        "先用 --dry-run 预览：所有问题连同行号（表头为第 1 行）一并列出，有问题则不做任何改动。",
        "阵地须在本区步行道路 800 米以内。",
    ):
        ws.append([line])
    ws.column_dimensions["A"].width = 12
    ws.column_dimensions["B"].width = 16
    ws.column_dimensions["C"].width = 90
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def write_template(path: str | Path) -> Path:
    """Write an empty registry workbook: Chinese headers, one marked example row, a 说明 sheet."""
    path = Path(path)
    wb = Workbook()
    _sheet(wb, [EXAMPLE_ROW], example=True)
    _help_sheet(wb)
    wb.save(path)
    return path


def write_rows(rows: list[dict[str, Any]], path: str | Path, *, crs: Crs | str) -> Path:
    """Write export rows to ``.xlsx``, ``.csv`` (UTF-8 with BOM) or ``.geojson``.

    Raises
    ------
    RegistryFileError
        If the suffix is none of these.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        wb = Workbook()
        _sheet(wb, rows, example=False)
        _help_sheet(wb)
        wb.save(path)
    elif suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([c.zh for c in COLUMNS])
            for row in rows:
                writer.writerow([row[c.key] for c in COLUMNS])
    elif suffix in (".geojson", ".json"):
        features = [
            {"type": "Feature",
             "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
             "properties": {c.key: row[c.key] for c in COLUMNS if c.key not in ("lon", "lat")}}
            for row in rows
        ]
        doc = {"type": "FeatureCollection", "datum": Crs(crs).value, "features": features}
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        msg = f"不支持的文件类型 {suffix or path.name}：请用 .xlsx、.csv 或 .geojson"
        raise RegistryFileError(msg)
    return path


def export_registry(url: str, district: str, path: str | Path, *,
                    crs: Crs | str = Crs.WGS84) -> int:
    """Write the district's open positions to a file; return how many.

    Raises
    ------
    RegistryFileError
        If the suffix is not ``.xlsx``, ``.csv`` or ``.geojson``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".xlsx", ".csv", ".geojson", ".json"):
        msg = f"不支持的文件类型 {suffix or path}：请用 .xlsx、.csv 或 .geojson"
        raise RegistryFileError(msg)
    with session_maker(url, readonly=True)() as session:
        rows = export_rows(session, district, crs=crs,
                           chinese=suffix in (".xlsx", ".csv"))
    write_rows(rows, path, crs=crs)
    return len(rows)


def describe(report: ImportReport) -> list[str]:
    """Return the report as lines for people: a summary, then one line per change."""
    u = report.unit
    head = (f"{report.district} ← {report.file} ({report.crs}): {len(report.added)} to add, "
            f"{len(report.changed)} to change, {len(report.closed)} to close, "
            f"{report.unchanged} unchanged")
    if report.problems:
        head = (f"{report.district} ← {report.file} ({report.crs}): {len(report.problems)} "
                "problem(s); nothing is imported until they are fixed")
    lines = [head]
    for a in report.added:
        parent = f"，上级 {a['parent']}" if a.get("parent") else ""
        lines.append(f"+ 第{a['row']}{u} {LEVEL_SHORT[a['level']]} {a['name']} → "
                     f"{a['site_id']}{parent}")
    for c in report.changed:
        parts = []
        for key, (old, new) in c["changes"].items():
            if key == "lat":
                continue
            if key == "lon":
                lon0, lat0 = old, c["changes"]["lat"][0]
                lon1, lat1 = new, c["changes"]["lat"][1]
                parts.append(f"位置移动 {metres(lon0, lat0, lon1, lat1):.0f} 米")
                continue
            label = {"parent_id": "上级", **{k.key: k.zh for k in COLUMNS}}[key]
            if key == "parent_id":
                new = c.get("parent") or new
            parts.append(f"{label} {old or '—'} → {new or '—'}")
        lines.append(f"~ 第{c['row']}{u} {c['site_id']} {c['name']}：{'；'.join(parts)}")
    for c in report.closed:
        lines.append(f"- {c['site_id']} {c['name']}（{LEVEL_SHORT.get(c['level'], c['level'])}）"
                     "不在文件中，关闭")
    for s in report.skipped:
        lines.append(f"  第{s['row']}{u} 是示例（{s['name']}），已跳过")
    lines += [f"  {n}" for n in report.notes]
    if report.applied and report.version_after == report.version_before:
        lines.append(f"nothing to change: registry version {report.version_before}")
    elif report.applied:
        lines.append(f"applied: registry version {report.version_before} → "
                     f"{report.version_after}")
    elif report.dry_run and not report.problems:
        lines.append("dry run: nothing was written")
    return lines
