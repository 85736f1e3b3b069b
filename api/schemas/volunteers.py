"""Pydantic schemas of volunteers, team members, activities and sign-ups."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.domain import SignupState

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


class SignupCancelled(BaseModel):
    """A cancelled sign-up and the waitlisted one promoted in its place, if any."""

    cancelled: SignupPublic
    promoted: SignupPublic | None


class SignupList(BaseModel):
    """An activity's sign-ups in order of arrival."""

    items: list[SignupPublic]
