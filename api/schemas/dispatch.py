"""Pydantic schemas of the dispatch API: service requests, teams, categories and users."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.domain import RequestState, Role
from api.schemas.cards import NavigationLinks
from api.schemas.evidence import PhotoRef
from geo.datum import Crs, to_wgs84
from geo.registry import Level


class RequestCreate(BaseModel):
    """A resident's order for a volunteer service (点单)."""

    lon: float = Field(ge=-180, le=180, description="Longitude, in `crs`", examples=[112.5501])
    lat: float = Field(ge=-90, le=90, description="Latitude, in `crs`", examples=[37.8024])
    category: str = Field(
        min_length=1, max_length=32, description="Category code (GET /categories)",
        examples=["elderly"],
    )
    description: str = Field(min_length=1, max_length=2000, examples=["帮忙代购一周的药品"])
    contact: str = Field(min_length=3, max_length=64, pattern=r"^[0-9+\- ()]+$",
                         description="Phone number", examples=["13812341234"])
    # Left out of dumps (the idempotency fingerprint): after in_wgs84() it says nothing.
    crs: Crs = Field(
        default=Crs.WGS84, exclude=True,
        description="Datum of `lon`/`lat`: `wgs84` (GPS, OSM; the default), `gcj02` (Amap 高德, "
                    "Tencent 腾讯, WeChat 微信) or `bd09` (Baidu 百度); stored as WGS84",
    )

    def in_wgs84(self) -> RequestCreate:
        """Return this order with its position converted to WGS84 (what is stored)."""
        if self.crs is Crs.WGS84:
            return self
        lon, lat = to_wgs84(self.lon, self.lat, crs=self.crs)
        return self.model_copy(update={"lon": lon, "lat": lat, "crs": Crs.WGS84})


class DispatchBody(BaseModel):
    """派单: to a named team, or (no team_id) to the nearest capable team with free capacity."""

    team_id: str | None = Field(default=None, max_length=96)


class RejectBody(BaseModel):
    """驳回: why the order is refused; the resident reads it."""

    reason: str = Field(min_length=2, max_length=500, pattern=r"\S",
                        examples=["不属于志愿服务范围，请拨打 12345 热线"])


class MergeBody(BaseModel):
    """合并: the open order of the same category this duplicate joins."""

    into: int = Field(ge=1, le=2_147_483_647, description="Id of the order kept")


class NoteBody(BaseModel):
    """An optional note (reason for declining or cancelling)."""

    reason: str = Field(default="", max_length=500)


class CompleteBody(BaseModel):
    """Hours the team served."""

    hours: float = Field(gt=0, le=24, description="Hours served", examples=[1.5])
    note: str = Field(default="", max_length=500)


class ReviewBody(BaseModel):
    """评单: 1-5 stars and a comment."""

    stars: int = Field(ge=1, le=5, examples=[5])
    comment: str = Field(default="", max_length=500, examples=["准时热心，谢谢！"])


class TeamRef(BaseModel):
    """A team as a request shows it."""

    team_id: str
    name: str


class TransitionPublic(BaseModel):
    """One step of a request's history (audit trail)."""

    action: str
    from_state: RequestState | None
    to_state: RequestState
    actor_id: int
    actor_role: Role
    team_id: str | None
    note: str
    at: datetime


class ReviewPublic(BaseModel):
    """A resident's review."""

    stars: int
    comment: str
    at: datetime


class RequestPublic(BaseModel):
    """A service request, its state and its history."""

    id: int
    district: str
    state: RequestState
    state_zh: str
    category: str
    category_zh: str
    description: str
    contact: str = Field(
        description="Masked (138****1234) except for dispatchers and the assigned team"
    )
    contact_masked: bool
    lon: float = Field(description="Longitude, in `out_crs` (stored as WGS84)")
    lat: float = Field(description="Latitude, in `out_crs` (stored as WGS84)")
    resident_id: int
    team: TeamRef | None
    round: int = Field(description="Times the request went back to the pool after a decline")
    hours: float | None
    next_actions: list[str] = Field(description="Actions the current state allows (any role)")
    created_at: datetime
    updated_at: datetime
    review: ReviewPublic | None
    history: list[TransitionPublic]
    reject_reason: str | None = Field(default=None, description="Why it was rejected (驳回)")
    merged_into: int | None = Field(default=None, description="The order it was merged into")
    merged_into_state: RequestState | None = Field(
        default=None, description="For a merged order: the state of the order kept in its place "
                                  "(merges of that one followed), so its resident can follow it")
    merged_into_state_zh: str | None = None
    level: Level | None = Field(default=None,
                                description="Level answering for it: community, township, center")
    level_zh: str | None = Field(default=None, description="站, 所 or 中心")
    area_site_id: str | None = Field(default=None, description="Position answering for it")
    area_name: str | None = None
    photos: list[PhotoRef] = Field(default_factory=list,
                                   description="Evidence photos (完成凭证), oldest first")
    navigation: NavigationLinks | None = Field(
        default=None,
        description="导航 to the order's place: Amap (GCJ-02) and Baidu (BD-09) links, not moved "
                    "by `out_crs`; for those who see the contact, null for everyone else")


class RequestList(BaseModel):
    """A page of service requests."""

    items: list[RequestPublic]
    count: int
    limit: int
    offset: int


class TeamCandidate(BaseModel):
    """A team ranked by walking minutes, and why it is or is not eligible."""

    rank: int
    team_id: str
    name: str
    categories: list[str]
    site_id: str
    site_name: str
    site_level: Level
    walk_m: float | None
    walk_minutes: float | None
    capacity: int
    open_requests: int
    free_capacity: int
    active: bool
    eligible: bool
    reasons: list[str] = Field(description="category, inactive, capacity, declined, unreachable")
    reasons_zh: list[str]


class TeamRanking(BaseModel):
    """Teams nearest a position by walking time on the street network."""

    lon: float = Field(description="The position's longitude, in `out_crs`")
    lat: float = Field(description="The position's latitude, in `out_crs`")
    category: str
    access_m: float = Field(description="Straight walk from the position onto the nearest street")
    walk_m_per_min: float
    considered: int
    teams: list[TeamCandidate]


class CategoryPublic(BaseModel):
    """One of the 8+N volunteer service categories."""

    code: str
    name: str
    name_en: str
    core: bool


class CategoryList(BaseModel):
    """The 8 national categories and the N local extras."""

    categories: list[CategoryPublic]
    count: int
    core: int
    local: int


class LeaderboardEntry(BaseModel):
    """A team's volunteer points and star level."""

    rank: int
    team_id: str
    name: str
    categories: list[str]
    site_id: str
    points: int
    hours: float
    completed: int
    reviews: int
    rating: float | None = Field(description="Mean review stars")
    star_level: int = Field(description="0-5 by total hours served (100/300/600/1000/1500 h)")
    star_level_zh: str


class Leaderboard(BaseModel):
    """Teams by volunteer points."""

    district: str
    teams: list[LeaderboardEntry]
    rules: str


class UserPublic(BaseModel):
    """The calling user (GET /users/me; the user of a phone sign-in)."""

    id: int
    name: str
    role: Role
    role_zh: str = Field(description="The role in zh-CN (居民, 调度员...)")
    team_id: str | None
    site_id: str | None = Field(default=None, description="The 所/站 of a station account")
    phone_masked: str | None = Field(default=None, description="Sign-in phone, 138****1234")
    volunteer_id: int | None = Field(default=None, description="The volunteer profile, if any")
    leads_teams: list[str] = Field(default_factory=list, description="Teams the user leads")


class DuplicateRef(BaseModel):
    """Another open order that may be the same call."""

    id: int
    walk_m: float = Field(description="Walking metres between the two on the street network")


class QueueItem(BaseModel):
    """An open order on the dispatcher's workbench, with its SLA timer."""

    id: int
    category: str
    category_zh: str
    state: RequestState
    state_zh: str
    created_at: datetime
    age_minutes: float
    sla_minutes: float | None = Field(description="Minutes it may wait at its level")
    due_at: datetime | None = Field(description="When it becomes overdue (waiting orders only)")
    overdue: bool
    level: Level | None
    level_zh: str | None
    area_site_id: str | None
    area_name: str | None
    team_id: str | None
    team_name: str | None
    description: str
    contact: str
    contact_masked: bool
    lon: float
    lat: float
    round: int
    next_actions: list[str]
    duplicates: list[DuplicateRef]


class DeskQueue(BaseModel):
    """The workbench queue: open orders oldest first, with counts."""

    now: datetime
    items: list[QueueItem]
    count: int = Field(description="Open orders matching the filters (before the limit)")
    counts: dict[str, int] = Field(description="Open orders per state (the caller's area)")
    overdue: int = Field(description="Overdue orders (the caller's area)")
    sla_minutes: dict[str, float] = Field(description="The SLA setting, per category and *")
