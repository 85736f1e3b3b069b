"""Check volunteers in and out of activities (打卡), verified by code, time and walking.

The leader shows a short code (and its QR) that rotates every ``checkin_code_minutes``: an
HMAC of the activity and the time slot under the service's signing key, so an old code fails
after one rotation and a forged one always. A volunteer's phone sends the code and its position;
the check-in is accepted only for a confirmed sign-up, inside the activity's window widened by
``checkin_grace_minutes``, and when the walk from the phone to the position on the street
network (the same walks as coverage) takes at most ``checkin_walk_minutes``: a river, railway
or wall that a straight-line circle lets through is a long walk here.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.domain import BEIJING, Role, SignupState
from api.services.activities import find_activity, walk_minutes_from
from api.services.dispatch_errors import DispatchError, ForbiddenError
from api.services.keys import READABLE, secret_key
from api.services.leaders import led_teams
from api.services.ledger import credit_activity
from api.services.volunteers import volunteer_of
from api.settings import get_settings
from api.storage.models import Activity, Attendance, HoursEntry, Signup, User, as_utc, utcnow
from geo import District

#: Characters of a check-in code.
CODE_LENGTH = 6


class CheckinError(DispatchError):
    """Base of the check-in refusals."""


class BadCodeError(CheckinError):
    """The code is not the activity's current (or just previous) code."""


class OutsideWindowError(CheckinError):
    """Too early or too late for the activity (grace included)."""


class TooFarError(CheckinError):
    """The walk from the phone to the position is longer than allowed (``walk_minutes``)."""


class NotSignedUpError(CheckinError):
    """The volunteer has no confirmed sign-up for the activity."""


class AttendanceStateError(CheckinError):
    """Checked in already, or checking out without a check-in, or twice."""


@cache
def _signing_key(setting: str, cache_dir: str) -> bytes:
    return secret_key(setting, cache=Path(cache_dir), name="signing")


def _slot_code(activity_id: int, slot: int) -> str:
    settings = get_settings()
    key = _signing_key(settings.signing_key, str(settings.cache))
    digest = hmac.new(key, f"checkin:{activity_id}:{slot}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(CODE_LENGTH):
        number, i = divmod(number, len(READABLE))
        chars.append(READABLE[i])
    return "".join(chars)


def _slot(at: datetime) -> tuple[int, float]:
    period = get_settings().checkin_code_minutes * 60
    return math.floor(at.timestamp() / period), period


def current_code(activity_id: int, *, at: datetime | None = None) -> tuple[str, datetime]:
    """Return the activity's code now and when the next replaces it."""
    at = at or utcnow()
    slot, period = _slot(at)
    until = datetime.fromtimestamp((slot + 1) * period, tz=at.tzinfo)
    return _slot_code(activity_id, slot), until


def code_is_valid(activity_id: int, code: str, *, at: datetime | None = None) -> bool:
    """Tell whether a code is the current one or the one before (shown just as it rotated)."""
    slot, _ = _slot(at or utcnow())
    typed = code.strip().upper()
    return any(hmac.compare_digest(typed, _slot_code(activity_id, s)) for s in (slot, slot - 1))


def checkin_code(session: Session, district: District, activity_id: int, *, viewer: User,
                 base_url: str) -> dict[str, Any]:
    """Return the code to show at the activity, its expiry and what its QR encodes.

    Raises
    ------
    NotFoundError, ForbiddenError
        If the activity is not in the district, or the viewer is neither admin nor its leader.
    """
    activity = find_activity(session, district, activity_id)
    if viewer.role != Role.ADMIN and activity.team_id not in led_teams(session, viewer):
        msg = "只有管理员或本队队长可以出示签到码"
        raise ForbiddenError(msg, role=viewer.role)
    code, until = current_code(activity.id)
    return {"activity_id": activity.id, "code": code, "valid_until": until,
            "qr_text": f"{base_url.rstrip('/')}/m/checkin?activity={activity.id}&code={code}"}


def qr_image(text: str, *, kind: str) -> bytes:
    """Draw a QR code (``svg`` or ``png``) with segno, large enough to scan from a screen."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind=kind, scale=8, border=2)
    return out.getvalue()


def _verify(session: Session, district: District, activity: Activity, *, code: str,
            lon: float, lat: float) -> float:
    """Check the code, the time and the walk; return the walking minutes."""
    settings = get_settings()
    if not code_is_valid(activity.id, code):
        msg = "签到码不正确或已过期，请扫描现场最新的二维码"
        raise BadCodeError(msg)
    now, grace = utcnow(), timedelta(minutes=settings.checkin_grace_minutes)
    start, end = as_utc(activity.starts_at), as_utc(activity.ends_at)
    if activity.cancelled or not start - grace <= now <= end + grace:
        opens, closes = (start - grace).astimezone(BEIJING), (end + grace).astimezone(BEIJING)
        msg = f"不在活动签到时间内（北京时间 {opens:%m-%d %H:%M} 至 {closes:%m-%d %H:%M}）"
        raise OutsideWindowError(msg, starts_at=start.isoformat(), ends_at=end.isoformat())
    minutes = walk_minutes_from(district, lon, lat).get(activity.site_id, math.inf)
    limit = settings.checkin_walk_minutes
    if minutes > limit:
        shown = "无法步行到达" if math.isinf(minutes) else f"步行约 {minutes:.1f} 分钟"
        msg = f"你的位置离活动地点{shown}，超过 {limit:g} 分钟，不能签到"
        raise TooFarError(msg, walk_minutes=None if math.isinf(minutes) else round(minutes, 1),
                          limit_minutes=limit)
    return minutes


def check_in(session: Session, district: District, activity_id: int, *, user: User, code: str,
             lon: float, lat: float) -> Attendance:
    """Check the calling volunteer in: once, with a confirmed sign-up, by code, time and walk.

    Raises
    ------
    ForbiddenError, NotFoundError, NotSignedUpError, BadCodeError, OutsideWindowError,
    TooFarError, OutOfAreaError, AttendanceStateError
    """
    volunteer = volunteer_of(session, user)
    activity = find_activity(session, district, activity_id)
    signup = session.scalar(select(Signup).where(
        Signup.activity_id == activity.id, Signup.volunteer_id == volunteer.id))
    if signup is None or signup.state != SignupState.CONFIRMED:
        msg = "你没有这个活动的有效报名（候补或已取消的不能签到）"
        raise NotSignedUpError(msg)
    minutes = _verify(session, district, activity, code=code, lon=lon, lat=lat)
    if session.get(Attendance, (activity.id, volunteer.id)) is not None:
        msg = "你已签到过这个活动"
        raise AttendanceStateError(msg)
    row = Attendance(activity_id=activity.id, volunteer_id=volunteer.id, checkin_at=utcnow(),
                     checkin_walk_minutes=round(minutes, 2))
    session.add(row)
    session.flush()
    return row


def check_out(session: Session, district: District, activity_id: int, *, user: User, code: str,
              lon: float, lat: float) -> tuple[Attendance, HoursEntry]:
    """Check the calling volunteer out and credit the hours, clipped to the activity's window.

    Raises
    ------
    the same as :func:`check_in`; AttendanceStateError without a check-in or on a second one.
    """
    volunteer = volunteer_of(session, user)
    activity = find_activity(session, district, activity_id)
    row = session.scalar(select(Attendance).where(
        Attendance.activity_id == activity.id, Attendance.volunteer_id == volunteer.id)
        .with_for_update().execution_options(populate_existing=True))
    if row is None or row.checkout_at is not None:
        msg = "请先签到" if row is None else "你已签退过这个活动"
        raise AttendanceStateError(msg)
    minutes = _verify(session, district, activity, code=code, lon=lon, lat=lat)
    now = utcnow()
    row.checkout_at, row.checkout_walk_minutes = now, round(minutes, 2)
    served = (min(now, as_utc(activity.ends_at))
              - max(as_utc(row.checkin_at), as_utc(activity.starts_at)))
    hours = round(max(served.total_seconds(), 0.0) / 3600, 2)
    entry = credit_activity(session, volunteer.id, hours=hours, activity_id=activity.id,
                            team_id=activity.team_id, actor=user)
    session.flush()
    return row, entry


def attendance_public(row: Attendance, entry: HoursEntry | None = None) -> dict[str, Any]:
    """Describe a check-in (and check-out with the hours credited)."""
    return {
        "activity_id": row.activity_id, "volunteer_id": row.volunteer_id,
        "checkin_at": as_utc(row.checkin_at), "checkin_walk_minutes": row.checkin_walk_minutes,
        "checkout_at": None if row.checkout_at is None else as_utc(row.checkout_at),
        "checkout_walk_minutes": row.checkout_walk_minutes,
        "hours": None if entry is None else round(entry.hours, 2),
    }
