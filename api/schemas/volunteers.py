"""Pydantic schemas of volunteers, team members, activities and sign-ups."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.domain import EntryState, HoursKind, SignupState
from geo.datum import Crs, to_wgs84

_PHONE = "Mainland mobile number; shown as 138****1234 to all but admins and team leaders"


class VolunteerCreate(BaseModel):
    """A volunteer's registration (实名注册)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["王志愿"])
    phone: str = Field(min_length=11, max_length=20, pattern=r"^[0-9+\- ]+$",
                       description=_PHONE, examples=["13812341234"])
    id_card: str | None = Field(
        default=None, min_length=15, max_length=18, pattern=r"^[0-9]{17}[0-9Xx]$",
        description="Resident ID-card number (GB 11643, check digit verified); stored "
                    "encrypted and never returned whole", examples=["11010519491231002X"])
    categories: list[str] = Field(default_factory=list, max_length=20,
                                  description="Service categories served (GET /categories)")


class TeamMembership(BaseModel):
    """A team a volunteer belongs to."""

    team_id: str
    name: str
    leader: bool


class VolunteerPublic(BaseModel):
    """A volunteer as the caller may see it."""

    id: int
    name: str
    phone: str = Field(description=_PHONE)
    id_card: str | None = Field(description="Masked: first and last characters only")
    categories: list[str]
    teams: list[TeamMembership]
    created_at: datetime


class VolunteerRegistered(BaseModel):
    """A new volunteer and its API token (shown once, never stored)."""

    volunteer: VolunteerPublic
    token: str


class VolunteerList(BaseModel):
    """Volunteers of a team."""

    items: list[VolunteerPublic]


class MemberCreate(BaseModel):
    """A volunteer to add to a team."""

    model_config = ConfigDict(extra="forbid")

    volunteer_id: int = Field(ge=1, le=2**31 - 1)
    leader: bool = Field(default=False, description="Make it the team's leader (admin only)")


class ActivityCreate(BaseModel):
    """An activity to publish at a practice position (活动发布)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, examples=["重阳节敬老义诊"])
    category: str = Field(min_length=1, max_length=32, examples=["health"],
                          description="Service category code (GET /categories)")
    description: str = Field(default="", max_length=4000)
    theme: str | None = Field(default=None, max_length=100,
                              description="The month's theme (一月一主题)")
    site_id: str = Field(min_length=1, max_length=64, description="Position where it happens")
    team_id: str | None = Field(
        default=None, max_length=96,
        description="The team that runs it; default: the one the caller leads")
    starts_at: AwareDatetime = Field(examples=["2026-12-12T09:00:00+08:00"])
    ends_at: AwareDatetime = Field(examples=["2026-12-12T11:30:00+08:00"])
    capacity: int = Field(ge=1, le=10_000, description="Volunteers it needs")


class ActivityPublic(BaseModel):
    """A published activity, with its position and the spaces left."""

    id: int
    title: str
    category: str
    category_name: str
    description: str
    theme: str | None
    starts_at: datetime
    ends_at: datetime
    capacity: int
    confirmed: int = Field(description="Confirmed sign-ups")
    spaces_left: int
    cancelled: bool
    site_id: str
    site_name: str
    address: str | None
    lon: float = Field(description="The position's longitude (WGS84)")
    lat: float = Field(description="The position's latitude (WGS84)")
    team_id: str | None
    walk_minutes: float | None = Field(
        description="Walking minutes on the street network from `near` (null without it, or "
                    "when the position cannot be reached)")


class ActivityList(BaseModel):
    """Activities that have not ended, soonest first (nearest first with `near`)."""

    total: int
    items: list[ActivityPublic]


class SignupPublic(BaseModel):
    """A volunteer's sign-up for an activity."""

    activity_id: int
    volunteer_id: int
    state: SignupState
    state_name: str = Field(description="The state in zh-CN")
    waitlist_place: int | None = Field(description="1 = promoted next; null unless waitlisted")
    created_at: datetime
    updated_at: datetime


class MySignup(BaseModel):
    """One of the caller's sign-ups, with its activity and whether it checked in and out."""

    activity_id: int
    title: str
    category: str
    category_name: str
    starts_at: datetime
    ends_at: datetime
    site_id: str
    site_name: str
    activity_cancelled: bool = Field(description="The activity was called off")
    state: SignupState
    state_name: str = Field(description="The state in zh-CN (已报名, 候补中, 已取消)")
    waitlist_place: int | None = Field(description="1 = promoted next; null unless waitlisted")
    checked_in: bool
    checkin_at: datetime | None
    checked_out: bool
    checkout_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MySignupList(BaseModel):
    """The caller's sign-ups (cancelled ones included, their state says so), latest first."""

    items: list[MySignup]


class SignupCancelled(BaseModel):
    """A cancelled sign-up and the waitlisted one promoted in its place, if any."""

    cancelled: SignupPublic
    promoted: SignupPublic | None


class SignupList(BaseModel):
    """An activity's sign-ups in order of arrival."""

    items: list[SignupPublic]


class CheckinCode(BaseModel):
    """The code to show at an activity, rotating; scan its QR or type it."""

    activity_id: int
    code: str = Field(description="Short code (6 characters); the previous one still works")
    valid_until: datetime = Field(description="When the next code replaces it")
    qr_text: str = Field(description="What the QR encodes: the phone page's check-in link")
    qr_svg: str = Field(description="The QR code as an SVG document")


class CheckinBody(BaseModel):
    """A check-in or check-out from a phone: the code shown on site and where the phone is."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=12, examples=["K7Q2MX"])
    lon: float = Field(ge=-180, le=180, description="Longitude, in `crs`")
    lat: float = Field(ge=-90, le=90, description="Latitude, in `crs`")
    crs: Crs = Field(default=Crs.WGS84, description="Datum of `lon`/`lat` (wgs84, gcj02, bd09)")

    def in_wgs84(self) -> tuple[float, float]:
        """Return the position in WGS84."""
        return to_wgs84(self.lon, self.lat, crs=self.crs)


class AttendancePublic(BaseModel):
    """A check-in, and the check-out with the hours it credited."""

    activity_id: int
    volunteer_id: int
    checkin_at: datetime
    checkin_walk_minutes: float = Field(description="Walk on the network from the phone")
    checkout_at: datetime | None
    checkout_walk_minutes: float | None
    hours: float | None = Field(description="Hours credited at check-out (clipped to the window)")


class HoursProposal(BaseModel):
    """A leader's correction or back-fill (补录) of a volunteer's hours; an admin approves it."""

    model_config = ConfigDict(extra="forbid")

    hours: float = Field(ge=-200, le=200, description="Negative corrects downwards")
    kind: HoursKind = Field(description="correction or backfill (not activity)")
    note: str = Field(min_length=1, max_length=500, description="Why (shown to the admin)")
    activity_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class HoursEntryPublic(BaseModel):
    """One line of the hours ledger."""

    id: int
    volunteer_id: int
    activity_id: int | None
    team_id: str | None
    hours: float
    kind: HoursKind
    state: EntryState
    note: str
    created_at: datetime
    decided_at: datetime | None


class ServiceRecord(BaseModel):
    """A volunteer's hours, star level and points, with its ledger lines."""

    volunteer_id: int
    name: str
    hours: float = Field(description="Approved hours")
    star_level: int = Field(description="0-5 by hours (100/300/600/1000/1500 h)")
    star_name: str
    next_star_hours: int | None
    points: int = Field(description="Balance: the points ledger's sum")
    entries: list[HoursEntryPublic]


class RankingEntry(BaseModel):
    """A volunteer or team in the hours ranking."""

    rank: int
    id: int | str
    name: str
    hours: float
    star_level: int | None = None
    members: int | None = None


class Ranking(BaseModel):
    """Volunteers or teams by approved hours, for a month or all time."""

    period: str
    by: str
    items: list[RankingEntry]


class RewardCreate(BaseModel):
    """A reward to list in the points store (积分超市)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["环保购物袋"])
    description: str = Field(default="", max_length=2000)
    site_id: str = Field(min_length=1, max_length=64, description="Where it is picked up")
    price_points: int = Field(ge=1, le=1_000_000)
    stock: int = Field(ge=0, le=1_000_000)


class RewardPublic(BaseModel):
    """A reward on offer."""

    id: int
    name: str
    description: str
    price_points: int
    stock: int
    active: bool
    site_id: str
    site_name: str | None


class RewardList(BaseModel):
    """The rewards on offer, cheapest first."""

    items: list[RewardPublic]


class RedemptionPublic(BaseModel):
    """A reward exchanged for points; the code is shown at the position to pick it up."""

    id: int
    reward_id: int
    volunteer_id: int
    points: int
    code: str | None = Field(description="Pick-up code (to its volunteer and to staff only)")
    created_at: datetime
    picked_up_at: datetime | None


class MyRedemption(RedemptionPublic):
    """One of the caller's redemptions: what, where to pick it up, and its code."""

    reward_name: str
    site_id: str = Field(description="Where it is picked up")
    site_name: str


class MyRedemptionList(BaseModel):
    """The caller's redemptions, newest first."""

    items: list[MyRedemption]
