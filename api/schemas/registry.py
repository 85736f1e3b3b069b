"""Pydantic schemas of the registry API: practice positions and volunteer teams.

Bodies come in the datum the client names (``crs``) and leave in WGS84 for the services
(:mod:`api.services.registry` checks levels, categories, parents and places); answers are built
from the stored rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.services.requests_view import mask_contact
from api.storage.models import Position, Team
from geo.categories import CATEGORIES
from geo.datum import Crs, to_wgs84
from geo.registry import LEVELS

_PHONE = r"^[0-9+\- ()]+$"
_ZH: dict[str, str] = {str(c.code): c.name for c in CATEGORIES}
_LEVEL = "center (中心), township (所), community (站) or site (点)"
_CRS = ("Datum of `lon`/`lat`: `wgs84` (GPS, OSM; the default), `gcj02` (Amap 高德, Tencent "
        "腾讯, WeChat 微信) or `bd09` (Baidu 百度); stored as WGS84")
Codes = list[str]


def _codes(stored: str) -> list[str]:
    return [c for c in stored.split(",") if c]


def _wgs84(data: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """Move ``lon``/``lat`` (if there) from ``crs`` to WGS84; drop ``crs``."""
    data.pop("crs", None)
    if "lon" in data and crs is not Crs.WGS84:
        data["lon"], data["lat"] = to_wgs84(data["lon"], data["lat"], crs=crs)
    return data


def _refuse_null(model: BaseModel, fields: tuple[str, ...]) -> None:
    nulls = [f for f in fields if f in model.model_fields_set and getattr(model, f) is None]
    if nulls:
        msg = f"{', '.join(nulls)} 不能为 null"
        raise ValueError(msg)


# ------------------------------------------------------------------------------ positions


class PositionCreate(BaseModel):
    """A practice position to open (中心/所/站/点)."""

    model_config = ConfigDict(extra="forbid")

    level: str = Field(min_length=1, max_length=16, description=_LEVEL, examples=["site"])
    name: str = Field(min_length=1, max_length=200, examples=["金茂写字楼新时代文明实践点"])
    parent_id: str | None = Field(
        default=None, max_length=64,
        description="The position it belongs to (a level up); default: the nearest open one",
    )
    categories: Codes = Field(min_length=1, max_length=32,
                              description="Category codes it offers (GET /categories)",
                              examples=[["elderly", "health"]])
    lon: float = Field(ge=-180, le=180, description="Longitude, in `crs`", examples=[112.5501])
    lat: float = Field(ge=-90, le=90, description="Latitude, in `crs`", examples=[37.8024])
    crs: Crs = Field(default=Crs.WGS84, description=_CRS)
    osm_id: str | None = Field(default=None, max_length=40, pattern=r"^(node|way|relation)/\d+$",
                               description="The OSM place it stands at, if any (way/255644910)")
    address: str | None = Field(default=None, max_length=300)
    opening_hours: str | None = Field(default=None, max_length=200, examples=["Mo-Fr 09:00-17:00"])
    phone: str | None = Field(default=None, max_length=40, pattern=_PHONE,
                              description="Public phone of the position", examples=["0351-1234567"])

    def in_wgs84(self) -> dict[str, Any]:
        """Return the fields as :func:`api.services.registry.create_position` takes them."""
        return _wgs84(self.model_dump(), self.crs)


class PositionUpdate(BaseModel):
    """Fields of a position to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    level: str | None = Field(default=None, min_length=1, max_length=16, description=_LEVEL)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent_id: str | None = Field(
        default=None, max_length=64,
        description="`null`: link to the nearest open position a level up",
    )
    categories: Codes | None = Field(default=None, min_length=1, max_length=32)
    lon: float | None = Field(default=None, ge=-180, le=180,
                              description="Longitude, in `crs` (with `lat`)")
    lat: float | None = Field(default=None, ge=-90, le=90,
                              description="Latitude, in `crs` (with `lon`)")
    crs: Crs = Field(default=Crs.WGS84, description=_CRS)
    address: str | None = Field(default=None, max_length=300)
    opening_hours: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40, pattern=_PHONE)

    @model_validator(mode="after")
    def _complete(self) -> PositionUpdate:
        _refuse_null(self, ("level", "name", "categories", "lon", "lat"))
        if ("lon" in self.model_fields_set) != ("lat" in self.model_fields_set):
            msg = "lon 与 lat 须同时给出"
            raise ValueError(msg)
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields given, in WGS84, as ``update_position`` takes them."""
        return _wgs84(self.model_dump(exclude_unset=True), self.crs)


class PositionPublic(BaseModel):
    """A practice position as the registry holds it (nothing masked: its phone is public)."""

    site_id: str
    district: str
    level: str
    level_zh: str
    name: str
    parent_id: str | None
    categories: list[str]
    category_names: list[str] = Field(description="zh-CN names of `categories`")
    lon: float = Field(description="Longitude, in `out_crs` (stored as WGS84)")
    lat: float = Field(description="Latitude, in `out_crs` (stored as WGS84)")
    address: str | None
    opening_hours: str | None
    phone: str | None
    osm_id: str | None
    active: bool = Field(description="False once closed (kept, with its history)")
    demo: bool
    source: str = Field(description="demo, import or api")
    version: int = Field(description="Bumped by every change (the ETag carries it)")

    @classmethod
    def from_row(cls, row: Position) -> PositionPublic:
        """Present a stored position."""
        codes = _codes(row.categories)
        return cls(
            site_id=row.site_id, district=row.district, level=row.level,
            level_zh=LEVELS.get(row.level, row.level), name=row.name, parent_id=row.parent_id,
            categories=codes, category_names=[_ZH.get(c, c) for c in codes], lon=row.lon,
            lat=row.lat, address=row.address, opening_hours=row.opening_hours, phone=row.phone,
            osm_id=row.osm_id, active=bool(row.active), demo=bool(row.demo), source=row.source,
            version=row.row_version,
        )


# ---------------------------------------------------------------------------------- teams


class TeamCreate(BaseModel):
    """A volunteer team to seat at an open position."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["金茂敬老志愿服务队"])
    categories: Codes = Field(min_length=1, max_length=32,
                              description="Category codes it serves (GET /categories)",
                              examples=[["elderly"]])
    site_id: str = Field(min_length=1, max_length=64, description="The open position it sits at")
    capacity: int = Field(ge=0, le=1000, description="Requests it can hold open at once",
                          examples=[3])
    leader_contact: str | None = Field(default=None, min_length=3, max_length=40, pattern=_PHONE,
                                       description="Leader's phone (shown to admins only)",
                                       examples=["13812341234"])

    def data(self) -> dict[str, Any]:
        """Return the fields as :func:`api.services.registry.create_team` takes them."""
        return self.model_dump()


class TeamUpdate(BaseModel):
    """Fields of a team to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    categories: Codes | None = Field(default=None, min_length=1, max_length=32)
    site_id: str | None = Field(default=None, min_length=1, max_length=64)
    capacity: int | None = Field(default=None, ge=0, le=1000)
    leader_contact: str | None = Field(default=None, min_length=3, max_length=40,
                                       pattern=_PHONE)

    @model_validator(mode="after")
    def _complete(self) -> TeamUpdate:
        _refuse_null(self, ("name", "categories", "site_id", "capacity"))
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields given, as :func:`api.services.registry.update_team` takes them."""
        return self.model_dump(exclude_unset=True)


class TeamPublic(BaseModel):
    """A volunteer team; the leader's phone is masked (138****1234) for all but admins."""

    team_id: str
    district: str
    name: str
    categories: list[str]
    category_names: list[str] = Field(description="zh-CN names of `categories`")
    site_id: str
    capacity: int
    active: bool = Field(description="False once deactivated (kept, with its history)")
    demo: bool
    leader_contact: str | None
    leader_contact_masked: bool
    version: int = Field(description="Bumped by every change (the ETag carries it)")

    @classmethod
    def from_row(cls, row: Team, *, masked: bool) -> TeamPublic:
        """Present a stored team, its leader's phone masked if ``masked``."""
        codes = _codes(row.categories)
        contact = row.leader_contact
        return cls(
            team_id=row.team_id, district=row.district, name=row.name, categories=codes,
            category_names=[_ZH.get(c, c) for c in codes], site_id=row.site_id,
            capacity=row.capacity, active=bool(row.active), demo=bool(row.demo),
            leader_contact=mask_contact(contact) if masked and contact else contact,
            leader_contact_masked=bool(masked and contact), version=row.row_version,
        )


# -------------------------------------------------------------------------------- history


class RegistryChangePublic(BaseModel):
    """One change to a position or team: who, what (field: [old, new]) and when."""

    action: str = Field(description="create, update, close or import")
    actor: str = Field(description="Name of the admin (or the import) that made it")
    changes: dict[str, list[Any]]
    version: int = Field(description="The district's registry version it made")
    at: datetime


class RegistryHistory(BaseModel):
    """Every change to one position or team, oldest first."""

    entity: Literal["position", "team"]
    id: str
    changes: list[RegistryChangePublic]
