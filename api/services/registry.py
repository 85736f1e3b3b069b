"""Change a district's registry: open, edit and close positions and teams.

The one home of every registry change, whether it comes from an admin over the API or from an
office's spreadsheet (``practice-circle registry import``): each change is checked against the
district (level, categories, parent, place within the out-of-area bound), bumps the row's and
the district's version, and leaves a line in the history, all in the caller's transaction.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from shapely.geometry import Point
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.services.dispatch_errors import NotFoundError
from api.storage.models import Position, RegistryChange, RegistryVersion, Team, point, utcnow
from api.storage.registry import bump_version, read_registry
from geo import District
from geo.categories import CATEGORY_CODES, category
from geo.network import MAX_ACCESS_M
from geo.registry import LEVEL_PREFIX, LEVELS, PARENT_LEVELS, nearest_parent

R = TypeVar("R", Position, Team)
#: Position fields an edit may change.
POSITION_FIELDS = ("level", "name", "parent_id", "categories", "lon", "lat", "address",
                   "opening_hours", "phone")
#: Team fields an edit may change.
TEAM_FIELDS = ("name", "categories", "site_id", "capacity", "leader_contact", "active")


class RegistryEntryError(ValueError):
    """A position or team that cannot go in the registry as given."""


class PreconditionFailedError(Exception):
    """``If-Match`` named another version than the row has (someone edited it meanwhile)."""

    def __init__(self, msg: str, *, current: str) -> None:
        super().__init__(msg)
        self.extra = {"current_etag": current}


def etag(row: Position | Team) -> str:
    """Return the entity tag of a position or team (its row version)."""
    key = row.site_id if isinstance(row, Position) else row.team_id
    return f'"{key}.{row.row_version}"'


def _check_match(row: Position | Team, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if etag(row) not in wanted:
        msg = "该记录已被他人修改，请刷新后重试"
        raise PreconditionFailedError(msg, current=etag(row))


def _record(session: Session, district: str, entity: str, entity_id: str, action: str,
            actor: str, changes: dict[str, Any]) -> int:
    version = bump_version(session, district)
    session.add(RegistryChange(
        district=district, entity=entity, entity_id=entity_id, action=action, actor=actor,
        changes=json.dumps(changes, ensure_ascii=False, default=str), version=version,
        at=utcnow(),
    ))
    return version


def check_categories(codes: list[str] | str) -> str:
    """Return category codes as stored (comma-separated, in the 8+N order).

    Raises
    ------
    UnknownCategoryError
        If a code is unknown.
    """
    items = [c.strip() for c in (codes.split(",") if isinstance(codes, str) else codes)]
    for code in items:
        category(code)
    return ",".join(c for c in CATEGORY_CODES if c in items)


def check_level(level: str) -> str:
    """Return a valid level code.

    Raises
    ------
    RegistryEntryError
        If the level is not center, township, community or site.
    """
    if level not in LEVELS:
        msg = f"未知的阵地层级 {level!r}；可选：{', '.join(LEVELS)}"
        raise RegistryEntryError(msg)
    return level


def check_place(district: District, lon: float, lat: float) -> None:
    """Refuse a place farther than the out-of-area bound from every walkable street.

    Raises
    ------
    OutOfAreaError
        With the distance, in zh-CN.
    """
    district.network.attach([lon], [lat], max_access_m=MAX_ACCESS_M)  # type: ignore[arg-type]


def _parent(session: Session, district: District, level: str, parent_id: str | None,
            lon: float, lat: float) -> str | None:
    allowed = PARENT_LEVELS[level]
    if parent_id:
        parent = session.get(Position, parent_id)
        if parent is None or parent.district != district.name or not parent.active:
            msg = f"上级阵地 {parent_id!r} 不存在或已关闭"
            raise RegistryEntryError(msg)
        if parent.level not in allowed:
            msg = (f"{LEVELS[level]}的上级应为{'或'.join(LEVELS[a] for a in allowed)}，"
                   f"而 {parent_id!r} 是{LEVELS[parent.level]}")
            raise RegistryEntryError(msg)
        return parent_id
    if not allowed:
        return None
    open_now = read_registry(session, district.name).positions
    return nearest_parent(level, Point(lon, lat), open_now, crs=district.network.crs_metric)


def next_site_id(session: Session, district: str, level: str) -> str:
    """Return a new id for a position of this level (``小店区-S019``)."""
    prefix = f"{district}-{LEVEL_PREFIX[level]}"
    ids = session.scalars(select(Position.site_id).where(Position.site_id.like(f"{prefix}%")))
    numbers = [int(i[len(prefix):]) for i in ids if i[len(prefix):].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:03d}"


def create_position(session: Session, district: District, data: dict[str, Any], *,
                    actor: str, source: str = "api") -> Position:
    """Open a position (WGS84 ``lon``/``lat``); the parent defaults to the nearest one level up.

    Raises
    ------
    RegistryEntryError, UnknownCategoryError, OutOfAreaError
        If it cannot go in as given.
    """
    level = check_level(str(data["level"]))
    lon, lat = float(data["lon"]), float(data["lat"])
    check_place(district, lon, lat)
    cats = check_categories(data.get("categories") or [])
    name = str(data["name"]).strip()
    if not name:
        msg = "名称不能为空"
        raise RegistryEntryError(msg)
    row = Position(
        site_id=data.get("site_id") or next_site_id(session, district.name, level),
        district=district.name, level=level, name=name,
        parent_id=_parent(session, district, level, data.get("parent_id"), lon, lat),
        categories=cats, lon=lon, lat=lat, geom=point(lon, lat), demo=False,
        address=data.get("address"), opening_hours=data.get("opening_hours"),
        phone=data.get("phone"), active=True, source=source, osm_id=data.get("osm_id"),
        row_version=1,
    )
    session.add(row)
    session.flush()
    _record(session, district.name, "position", row.site_id, "create", actor,
            {k: [None, getattr(row, k)] for k in POSITION_FIELDS})
    return row


def _row(session: Session, district: District, model: type[R], key: str, what: str, *,
         lock: bool = True) -> R:
    """Return a row of the district, locked for a change unless ``lock`` is false.

    Raises
    ------
    NotFoundError
        If the district has no such row.
    """
    row = session.get(model, key, with_for_update=lock)
    if row is None or row.district != district.name:
        msg = f"没有编号为 {key} 的{what}"
        raise NotFoundError(msg)
    return row


def _position(session: Session, district: District, site_id: str) -> Position:
    return _row(session, district, Position, site_id, "阵地")


def update_position(session: Session, district: District, site_id: str,
                    changes: dict[str, Any], *, actor: str, if_match: str | None = None,
                    source: str = "api") -> Position:
    """Change fields of an open position (``If-Match`` checked against its version).

    Raises
    ------
    NotFoundError, PreconditionFailedError, RegistryEntryError, UnknownCategoryError,
    OutOfAreaError
    """
    row = _position(session, district, site_id)
    _check_match(row, if_match)
    if not row.active:
        msg = f"阵地 {site_id} 已关闭，不能修改"
        raise RegistryEntryError(msg)
    new = {k: v for k, v in changes.items() if k in POSITION_FIELDS}
    if "level" in new:
        new["level"] = check_level(str(new["level"]))
    if "categories" in new:
        new["categories"] = check_categories(new["categories"])
    if "name" in new and not str(new["name"]).strip():
        msg = "名称不能为空"
        raise RegistryEntryError(msg)
    lon, lat = float(new.get("lon", row.lon)), float(new.get("lat", row.lat))
    if "lon" in new or "lat" in new:
        check_place(district, lon, lat)
    if "parent_id" in new or "level" in new:
        new["parent_id"] = _parent(session, district, new.get("level", row.level),
                                   new.get("parent_id", row.parent_id), lon, lat)
    diff = {k: [getattr(row, k), v] for k, v in new.items() if getattr(row, k) != v}
    if not diff:
        return row
    for k, v in new.items():
        setattr(row, k, v)
    if "lon" in diff or "lat" in diff:
        row.geom = point(lon, lat)
    row.row_version += 1
    row.source = source if row.source == "demo" else row.source
    _record(session, district.name, "position", site_id, "update", actor, diff)
    return row


def close_position(session: Session, district: District, site_id: str, *, actor: str,
                   if_match: str | None = None) -> Position:
    """Close a position (kept, with its history; its teams stop taking requests).

    Raises
    ------
    NotFoundError, PreconditionFailedError
    """
    row = _position(session, district, site_id)
    _check_match(row, if_match)
    if not row.active:
        return row
    row.active = False
    row.row_version += 1
    _record(session, district.name, "position", site_id, "close", actor, {"active": [True, False]})
    for team in session.scalars(select(Team).where(Team.site_id == site_id, Team.active)):
        team.active = False
        team.row_version += 1
        # The team's own history says why it stopped, not only the position's.
        _record(session, district.name, "team", team.team_id, "close", actor,
                {"active": [True, False], "site_active": [True, False]})
    return row


def _seat(session: Session, district: District, site_id: str) -> Position:
    """Return the open position a team is to sit at."""
    seat = session.get(Position, site_id)
    if seat is None or seat.district != district.name or not seat.active:
        msg = f"阵地 {site_id!r} 不存在或已关闭"
        raise RegistryEntryError(msg)
    return seat


def create_team(session: Session, district: District, data: dict[str, Any], *,
                actor: str) -> Team:
    """Seat a new team at an open position.

    Raises
    ------
    RegistryEntryError, UnknownCategoryError
    """
    seat = _seat(session, district, str(data["site_id"]))
    n = session.scalar(select(func.count()).select_from(Team).where(Team.site_id == seat.site_id))
    row = Team(
        team_id=data.get("team_id") or f"{seat.site_id}-T{int(n or 0) + 1:02d}",
        district=district.name, name=str(data["name"]).strip(),
        categories=check_categories(data["categories"]), site_id=seat.site_id,
        capacity=int(data.get("capacity", 3)), active=True, demo=False,
        leader_contact=data.get("leader_contact"), row_version=1,
    )
    if session.get(Team, row.team_id) is not None:
        msg = f"队伍编号 {row.team_id!r} 已存在"
        raise RegistryEntryError(msg)
    session.add(row)
    session.flush()
    _record(session, district.name, "team", row.team_id, "create", actor,
            {k: [None, getattr(row, k)] for k in TEAM_FIELDS})
    return row


def _team(session: Session, district: District, team_id: str) -> Team:
    return _row(session, district, Team, team_id, "队伍")


def update_team(session: Session, district: District, team_id: str, changes: dict[str, Any],
                *, actor: str, if_match: str | None = None) -> Team:
    """Change fields of a team (``If-Match`` checked against its version).

    Raises
    ------
    NotFoundError, PreconditionFailedError, RegistryEntryError, UnknownCategoryError
    """
    row = _team(session, district, team_id)
    _check_match(row, if_match)
    new = {k: v for k, v in changes.items() if k in TEAM_FIELDS}
    if "categories" in new:
        new["categories"] = check_categories(new["categories"])
    if "site_id" in new:
        _seat(session, district, str(new["site_id"]))
    if "capacity" in new and int(new["capacity"]) < 0:
        msg = "容量不能为负"
        raise RegistryEntryError(msg)
    diff = {k: [getattr(row, k), v] for k, v in new.items() if getattr(row, k) != v}
    if not diff:
        return row
    for k, v in new.items():
        setattr(row, k, v)
    row.row_version += 1
    _record(session, district.name, "team", team_id, "update", actor, diff)
    return row


def close_team(session: Session, district: District, team_id: str, *, actor: str,
               if_match: str | None = None) -> Team:
    """Stop a team taking requests (kept, with its history)."""
    return update_team(session, district, team_id, {"active": False}, actor=actor,
                       if_match=if_match)


def history(session: Session, district: District, entity_id: str) -> list[dict[str, Any]]:
    """Return who changed a position or team, how and when, oldest first.

    Raises
    ------
    NotFoundError
        If no such position or team was ever recorded in the district.
    """
    rows = session.scalars(
        select(RegistryChange)
        .where(RegistryChange.district == district.name, RegistryChange.entity_id == entity_id)
        .order_by(RegistryChange.id)
    ).all()
    if not rows and session.get(Position, entity_id) is None and session.get(
            Team, entity_id) is None:
        msg = f"没有编号为 {entity_id} 的阵地或队伍"
        raise NotFoundError(msg)
    return [
        {"action": r.action, "actor": r.actor, "changes": json.loads(r.changes),
         "version": r.version, "at": r.at.isoformat()}
        for r in rows
    ]



def lock_registry(session: Session, district: str) -> None:
    """Hold the district's registry version row until the transaction ends.

    Taken first by a writer that numbers new rows (:func:`next_site_id`, the team counter), so
    two concurrent creations never pick the same id (PostgreSQL; SQLite writers are serial).
    """
    session.execute(
        select(RegistryVersion.version).where(RegistryVersion.district == district)
        .with_for_update()
    )


def find_position(session: Session, district: District, site_id: str) -> Position:
    """Return a position of the district, open or closed (no lock).

    Raises
    ------
    NotFoundError
        If the district has no such position.
    """
    return _row(session, district, Position, site_id, "阵地", lock=False)


def find_team(session: Session, district: District, team_id: str) -> Team:
    """Return a team of the district, active or not (no lock).

    Raises
    ------
    NotFoundError
        If the district has no such team.
    """
    return _row(session, district, Team, team_id, "队伍", lock=False)
