"""Declare the tables of the dispatch service (SQLite + SpatiaLite or PostgreSQL + PostGIS)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from geoalchemy2 import Geometry, WKTElement
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.domain import EntryState, HoursKind, RequestState, Role, SignupState
from geo.registry import Level

#: Issue time of a token whose real one is unknown (the server default): always expired.
TOKEN_EPOCH = "1970-01-01 00:00:00"
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Read a stored timestamp as UTC (SQLite hands back naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def point(lon: float, lat: float) -> WKTElement:
    """Make a WGS84 point for a geometry column."""
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


E = TypeVar("E", bound=StrEnum)


class Vocabulary(TypeDecorator[E]):
    """A :class:`~enum.StrEnum` kept in a plain ``VARCHAR`` column.

    The database holds the codes (no schema change, no native enum type); Python gets the
    members, and an unknown code fails on write and on read.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        """Store a member (or its code) as its code."""
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        """Read a code back as its member."""
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    """Declarative base with a naming convention (stable constraint names for migrations)."""

    metadata = MetaData(naming_convention=NAMING)


class Position(Base):
    """A practice position: 中心 (center), 所 (township), 站 (community) or 点 (site)."""

    __tablename__ = "positions"

    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[Level] = mapped_column(Vocabulary(Level, 16))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64))
    categories: Mapped[str] = mapped_column(String(300), doc="comma-separated category codes")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    demo: Mapped[bool] = mapped_column(Boolean, default=True)
    address: Mapped[str | None] = mapped_column(String(300))
    opening_hours: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), doc="public phone of the position")
    #: A closed position is kept (its history and requests refer to it) but not served.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    source: Mapped[str] = mapped_column(String(16), default="demo", server_default="demo",
                                        doc="demo, import or api")
    osm_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str | None] = mapped_column(String(40))
    #: Bumped by every change; the ``ETag`` of the position.
    row_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Team(Base):
    """A volunteer team seated at a practice position."""

    __tablename__ = "teams"
    __table_args__ = (CheckConstraint("capacity >= 0", name="capacity"),)

    team_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    categories: Mapped[str] = mapped_column(String(300), doc="comma-separated category codes")
    site_id: Mapped[str] = mapped_column(ForeignKey("positions.site_id"))
    capacity: Mapped[int] = mapped_column(Integer, doc="requests it can hold open at once")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    demo: Mapped[bool] = mapped_column(Boolean, default=True)
    leader_contact: Mapped[str | None] = mapped_column(String(40))
    row_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    def serves(self, category: str) -> bool:
        """Tell whether the team offers a category."""
        return category in self.categories.split(",")


class User(Base):
    """A user with one role; API tokens are stored only as SHA-256 hashes."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {_in(Role)}", name="role"),
        CheckConstraint("(role = 'team') = (team_id IS NOT NULL)", name="team_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Vocabulary(Role, 16))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.team_id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When the current token was issued; it expires ``token_ttl_days`` later. A row written
    #: without it gets the epoch, so a token of unknown age counts as expired.
    token_issued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text(f"'{TOKEN_EPOCH}'")
    )
    #: When the current token was revoked (``practice-circle users revoke``); NULL while valid.
    token_revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Keyed hash of the mainland mobile number the user signs in with (one-time codes);
    #: the number itself is not kept here, only its masked form.
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    #: The 所 or 站 a ``station`` account allocates orders for (所站配单).
    site_id: Mapped[str | None] = mapped_column(String(64))


class SignInCode(Base):
    """A one-time sign-in code sent to a phone (stored hashed; used once, expires, few tries)."""

    __tablename__ = "signin_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceRequest(Base):
    """A resident's request for a volunteer service (点单) and where its lifecycle stands."""

    __tablename__ = "service_requests"
    __table_args__ = (
        CheckConstraint(f"state IN {_in(RequestState)}", name="state"),
        Index("ix_service_requests_state_team", "state", "team_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(64))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    state: Mapped[RequestState] = mapped_column(Vocabulary(RequestState, 16),
                                                default=RequestState.SUBMITTED)
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.team_id"))
    round: Mapped[int] = mapped_column(Integer, default=0, doc="times it went back to the pool")
    hours: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Why a dispatcher rejected it (驳回), shown to the resident.
    reject_reason: Mapped[str | None] = mapped_column(Text)
    #: The request this duplicate was merged into.
    merged_into: Mapped[int | None] = mapped_column(Integer)
    #: Who answers for it now: the level (站, 所 or 中心) and the position at that level;
    #: an order overdue at one level is escalated to the level above.
    level: Mapped[Level | None] = mapped_column(Vocabulary(Level, 16))
    area_site_id: Mapped[str | None] = mapped_column(String(64))
    level_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Transition(Base):
    """One step of a request's lifecycle: the audit trail."""

    __tablename__ = "request_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[RequestState | None] = mapped_column(Vocabulary(RequestState, 16))
    to_state: Mapped[RequestState] = mapped_column(Vocabulary(RequestState, 16))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[Role] = mapped_column(Vocabulary(Role, 16))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.team_id"))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Review(Base):
    """A resident's review of a completed request (评单)."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="stars"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), unique=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.team_id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PointsEntry(Base):
    """Volunteer points a team earned: served hours and review stars (a ledger)."""

    __tablename__ = "volunteer_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.team_id"), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"))
    reason: Mapped[str] = mapped_column(String(16))
    hours: Mapped[float] = mapped_column(Float, default=0.0)
    points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyRecord(Base):
    """The first answer to a POST carrying an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegistryVersion(Base):
    """One counter per district, bumped by every change to its positions or teams."""

    __tablename__ = "registry_versions"

    district: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class RegistryChange(Base):
    """Who changed which position or team, how, and when (never updated or deleted)."""

    __tablename__ = "registry_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16), doc="position or team")
    entity_id: Mapped[str] = mapped_column(String(96), index=True)
    action: Mapped[str] = mapped_column(String(16), doc="create, update, close or import")
    actor: Mapped[str] = mapped_column(String(100))
    changes: Mapped[str] = mapped_column(Text, doc="JSON: field -> [old, new]")
    version: Mapped[int] = mapped_column(Integer, doc="the registry version it made")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Volunteer(Base):
    """A registered volunteer (实名注册): the profile of a user with role ``volunteer``.

    The phone is kept whole (the team leader calls it) and shown masked to everyone else; the
    ID-card number is kept only encrypted (``id_card_cipher``) beside a masked form to show.
    """

    __tablename__ = "volunteers"
    __table_args__ = (UniqueConstraint("district", "phone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), doc="11-digit mainland mobile number")
    id_card_cipher: Mapped[str | None] = mapped_column(Text)
    id_card_masked: Mapped[str | None] = mapped_column(String(20))
    categories: Mapped[str] = mapped_column(String(300), doc="comma-separated category codes")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TeamMember(Base):
    """A volunteer's membership in a team; a team's leader is a member with ``leader``."""

    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.team_id"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), primary_key=True,
                                              index=True)
    leader: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Activity(Base):
    """An activity published at a practice position (活动发布), with a capacity."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("confirmed BETWEEN 0 AND capacity", name="confirmed"),
        Index("ix_activities_district_starts", "district", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str] = mapped_column(ForeignKey("positions.site_id"))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.team_id"))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    theme: Mapped[str | None] = mapped_column(String(100), doc="the month's theme (一月一主题)")
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer)
    #: Confirmed sign-ups, kept with every change under the activity's row lock.
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Signup(Base):
    """A volunteer's sign-up for an activity: confirmed, waitlisted (``seq`` order) or cancelled."""

    __tablename__ = "activity_signups"
    __table_args__ = (
        UniqueConstraint("activity_id", "volunteer_id"),
        CheckConstraint(f"state IN {_in(SignupState)}", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    state: Mapped[SignupState] = mapped_column(Vocabulary(SignupState, 16))
    #: Order of arrival within the activity: the waitlist is promoted lowest first.
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Attendance(Base):
    """A volunteer's check-in and check-out at an activity (打卡), each verified by walking."""

    __tablename__ = "attendance"

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), primary_key=True,
                                              index=True)
    checkin_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkin_walk_minutes: Mapped[float] = mapped_column(Float)
    checkout_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checkout_walk_minutes: Mapped[float | None] = mapped_column(Float)


class HoursEntry(Base):
    """One line of a volunteer's service-hours ledger (append-only).

    Check-outs credit hours at once (``approved``); a leader's correction or back-fill (补录)
    waits ``pending`` until an admin approves or rejects it. Totals count approved lines only.
    """

    __tablename__ = "hours_ledger"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(HoursKind)}", name="kind"),
        CheckConstraint(f"state IN {_in(EntryState)}", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id"))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.team_id"))
    hours: Mapped[float] = mapped_column(Float, doc="negative for a correction downwards")
    kind: Mapped[HoursKind] = mapped_column(Vocabulary(HoursKind, 16))
    state: Mapped[EntryState] = mapped_column(Vocabulary(EntryState, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PointsLine(Base):
    """One line of a volunteer's points ledger: earned from hours, spent in the store."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16), doc="hours or redeem")
    hours_entry_id: Mapped[int | None] = mapped_column(ForeignKey("hours_ledger.id"))
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reward(Base):
    """A reward in the points store (积分超市), picked up at a practice position."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock"),
        CheckConstraint("price_points >= 1", name="price"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("positions.site_id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_points: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Redemption(Base):
    """A reward exchanged for points; its pick-up code is confirmed once at the position (核销)."""

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    picked_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    picked_up_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class OutboxEvent(Base):
    """A notification written in the same transaction as the change it tells of (outbox).

    A deliverer posts it to the configured webhook until it is answered 2xx (at least once);
    ``event_id`` lets the receiver drop repeats.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, doc="JSON object")
    message_zh: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Who the message is worded for (``resident``, ``team``, ``volunteer``, ``phone``...).
    audience: Mapped[str | None] = mapped_column(String(32))
    #: Set when delivery gave up after the last allowed attempt (dead letter).
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Evidence(Base):
    """A photo attached to a request (completion evidence), stored once by content hash.

    The file holds no EXIF; only those allowed to see the request may fetch it.
    """

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("request_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
