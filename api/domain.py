"""Name the service vocabulary once: request and sign-up states, and the roles of users.

Each is a :class:`~enum.StrEnum`, so a member *is* its code (``RequestState.SUBMITTED ==
"submitted"``, and it serializes to that string) and carries its zh-CN name. Storage, schemas,
services and the command line import them from here. (Position levels and the "8+N" service
categories are geography and live in :mod:`geo.registry` and :mod:`geo.categories`.)
"""

from __future__ import annotations

from datetime import timedelta, timezone
from enum import StrEnum

#: Beijing time, in which residents and volunteers read every date (China keeps no daylight
#: saving, so a fixed offset needs no time-zone database).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


class RequestState(StrEnum):
    """Lifecycle states of a service request, in the order a request moves through them."""

    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    REVIEWED = "reviewed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    MERGED = "merged"

    @property
    def zh(self) -> str:
        """The state as residents read it (``已点单（待派单）``...)."""
        return _STATE_ZH[self]

    @property
    def rank(self) -> int:
        """Position in the lifecycle: 0 for ``submitted``, then each state in the order above."""
        return _STATE_RANK[self]


#: States an order is open in: waiting for a team or being served. It may be cancelled, it is on
#: the workbench's queue, and a duplicate may be merged into it.
OPEN_STATES: frozenset[RequestState] = frozenset(
    {RequestState.SUBMITTED, RequestState.DISPATCHED, RequestState.ACCEPTED})
#: Open states in which an order waits for a team: its SLA timer runs, it may be rejected,
#: merged or escalated.
WAITING_STATES: frozenset[RequestState] = frozenset(
    {RequestState.SUBMITTED, RequestState.DISPATCHED})


class Role(StrEnum):
    """Roles a user may hold (one each)."""

    RESIDENT = "resident"
    DISPATCHER = "dispatcher"
    TEAM = "team"
    ADMIN = "admin"
    VOLUNTEER = "volunteer"
    STATION = "station"
    #: The server itself, for moves nobody made by hand (escalation); it never signs in.
    SYSTEM = "system"

    @property
    def zh(self) -> str:
        """The role in zh-CN (``居民``...)."""
        return _ROLE_ZH[self]


class SignupState(StrEnum):
    """Where a volunteer's sign-up for an activity stands."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"

    @property
    def zh(self) -> str:
        """The state as volunteers read it (``已报名``...)."""
        return _SIGNUP_ZH[self]


class HoursKind(StrEnum):
    """Where a line of the service-hours ledger comes from."""

    ACTIVITY = "activity"
    CORRECTION = "correction"
    BACKFILL = "backfill"


class EntryState(StrEnum):
    """Whether a ledger line counts: leaders' corrections and back-fills wait for an admin."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"


_STATE_ZH: dict[RequestState, str] = {
    RequestState.SUBMITTED: "已点单（待派单）",
    RequestState.DISPATCHED: "已派单（待接单）",
    RequestState.ACCEPTED: "已接单（服务中）",
    RequestState.COMPLETED: "已完成（待评价）",
    RequestState.REVIEWED: "已评价",
    RequestState.CANCELLED: "已取消",
    RequestState.REJECTED: "已驳回",
    RequestState.MERGED: "已合并",
}
_STATE_RANK: dict[RequestState, int] = {s: i for i, s in enumerate(RequestState)}
_ROLE_ZH: dict[Role, str] = {
    Role.RESIDENT: "居民",
    Role.DISPATCHER: "调度员",
    Role.TEAM: "志愿服务队",
    Role.ADMIN: "管理员",
    Role.VOLUNTEER: "志愿者",
    Role.STATION: "所站管理员",
    Role.SYSTEM: "系统",
}
_SIGNUP_ZH: dict[SignupState, str] = {
    SignupState.CONFIRMED: "已报名",
    SignupState.WAITLISTED: "候补中",
    SignupState.CANCELLED: "已取消",
}
