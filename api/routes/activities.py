"""Activities: publish at a position, list by time or walking minutes, iCalendar, sign-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import (
    CrsDep,
    DistrictDep,
    LookupSessionDep,
    ReaderDep,
    ReadSessionDep,
    SessionDep,
    WriterDep,
)
from api.errors import ApiError
from api.schemas.volunteers import (
    ActivityCreate,
    ActivityList,
    ActivityPublic,
    AttendancePublic,
    CheckinBody,
    CheckinCode,
    SignupCancelled,
    SignupList,
    SignupPublic,
)
from api.services import activities, attendance
from api.services.calendar import activities_calendar
from api.storage.models import Position
from geo.datum import Crs, to_wgs84

router = APIRouter(tags=["activities"])

ActivityId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_ICS = "text/calendar; charset=utf-8"
_NEAR = ("`lon,lat` (in `crs`): each activity carries the walking minutes from there, on the "
         "street network, and they sort by it")


def _near(near: str | None, crs: Crs) -> tuple[float, float] | None:
    if near is None:
        return None
    try:
        lon, lat = (float(v) for v in near.split(","))
    except ValueError:
        lon = lat = float("nan")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ApiError(422, "invalid_near", "位置参数无效",
                       "near 应为 “经度,纬度”，例如 near=112.55,37.80")
    return to_wgs84(lon, lat, crs=crs)


Near = Annotated[str | None, Query(max_length=60, description=_NEAR,
                                   examples=["112.5501,37.8024"])]
From = Annotated[datetime | None, Query(alias="from", description="Default: now")]
To = Annotated[datetime | None, Query(description="Default: 60 days after `from`")]
CategoryQ = Annotated[str | None, Query(max_length=32, description="Category code")]


@router.post("/activities", status_code=201, response_model=ActivityPublic)
def publish(body: ActivityCreate, district: DistrictDep, session: SessionDep,
            user: WriterDep) -> JSONResponse:
    """Publish an activity at an open position (admin, or a leader for its team)."""
    activity = activities.publish(session, district, body.model_dump(), actor=user)
    session.commit()
    position = session.get(Position, activity.site_id)
    assert position is not None
    out = ActivityPublic(**activities.activity_public(activity, position))
    return JSONResponse(out.model_dump(mode="json"), status_code=201,
                        headers={"Location": f"/activities/{activity.id}"})


@router.get("/activities", response_model=ActivityList)
def list_activities(
    district: DistrictDep, session: ReadSessionDep, start: From = None, to: To = None,
    category: CategoryQ = None, near: Near = None, crs: CrsDep = Crs.WGS84,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, object]:
    """Activities that have not ended, soonest first; with `near`, nearest by walking first."""
    return activities.list_activities(
        session, district, start=start, end=to, category_code=category,
        near=_near(near, crs), limit=limit, offset=offset)


@router.get("/activities.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}})
def calendar(district: DistrictDep, session: ReadSessionDep, start: From = None, to: To = None,
             category: CategoryQ = None) -> Response:
    """Give the activities as an iCalendar feed (subscribe in any calendar app)."""
    listed = activities.list_activities(session, district, start=start, end=to,
                                        category_code=category, limit=10_000)
    body = activities_calendar(listed["items"], name=f"{district.name}新时代文明实践活动")
    return Response(body, media_type=_ICS)


# Before /activities/{activity_id}, which would take "7.ics" for an id.
@router.get("/activities/{activity_id}.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}})
def read_calendar(activity_id: ActivityId, district: DistrictDep,
                  session: ReadSessionDep) -> Response:
    """One activity as an iCalendar file (add to calendar)."""
    activity = activities.find_activity(session, district, activity_id)
    position = session.get(Position, activity.site_id)
    assert position is not None
    item = activities.activity_public(activity, position)
    return Response(activities_calendar([item], name=activity.title), media_type=_ICS)


@router.get("/activities/{activity_id}", response_model=ActivityPublic)
def read(activity_id: ActivityId, district: DistrictDep,
         session: LookupSessionDep) -> dict[str, object]:
    """One activity with its position and spaces left."""
    activity = activities.find_activity(session, district, activity_id)
    position = session.get(Position, activity.site_id)
    assert position is not None
    return activities.activity_public(activity, position)


@router.post("/activities/{activity_id}/signups", status_code=201, response_model=SignupPublic)
def sign_up(activity_id: ActivityId, district: DistrictDep,
            session: SessionDep, user: WriterDep) -> JSONResponse:
    """Sign up (volunteer): confirmed while there is room, else on the waitlist; 200 if already."""
    signup, created = activities.sign_up(session, district, activity_id, user=user)
    session.commit()
    out = SignupPublic(**activities.signup_public(session, signup))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/activities/{activity_id}/signups", response_model=SignupCancelled)
def cancel(activity_id: ActivityId, district: DistrictDep, session: SessionDep,
           user: WriterDep) -> dict[str, object]:
    """Cancel the caller's sign-up; the first on the waitlist takes a freed place."""
    cancelled, promoted = activities.cancel_signup(session, district, activity_id, user=user)
    session.commit()
    return {"cancelled": activities.signup_public(session, cancelled),
            "promoted": None if promoted is None else activities.signup_public(session, promoted)}


@router.get("/activities/{activity_id}/signups", response_model=SignupList)
def signups(activity_id: ActivityId, district: DistrictDep, session: ReadSessionDep,
            user: ReaderDep) -> dict[str, object]:
    """List an activity's sign-ups in order of arrival (admin or its team's leader)."""
    rows = activities.activity_signups(session, district, activity_id, viewer=user)
    return {"items": activities.signups_public(session, rows)}


@router.get("/activities/{activity_id}/checkin-code", response_model=CheckinCode,
            responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
def checkin_code(
    activity_id: ActivityId, request: Request, district: DistrictDep, session: ReadSessionDep,
    user: ReaderDep,
    image: Annotated[str | None, Query(pattern="^(svg|png)$",
                                       description="Answer with the QR image itself")] = None,
) -> Response:
    """Show the rotating check-in code and its QR (admin or the activity's leader)."""
    shown = attendance.checkin_code(session, district, activity_id, viewer=user,
                                    base_url=str(request.base_url))
    headers = {"Cache-Control": "no-store"}
    if image is not None:
        return Response(attendance.qr_image(shown["qr_text"], kind=image), headers=headers,
                        media_type="image/svg+xml" if image == "svg" else "image/png")
    svg = attendance.qr_image(shown["qr_text"], kind="svg").decode()
    body = CheckinCode(**shown, qr_svg=svg)
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


@router.post("/activities/{activity_id}/checkins", status_code=201,
             response_model=AttendancePublic)
def check_in(activity_id: ActivityId, body: CheckinBody, district: DistrictDep,
             session: SessionDep, user: WriterDep) -> dict[str, object]:
    """Check in on site (volunteer): the code shown there, and a walk of a few minutes at most."""
    lon, lat = body.in_wgs84()
    row = attendance.check_in(session, district, activity_id, user=user, code=body.code,
                              lon=lon, lat=lat)
    session.commit()
    return attendance.attendance_public(row)


@router.post("/activities/{activity_id}/checkouts", response_model=AttendancePublic)
def check_out(activity_id: ActivityId, body: CheckinBody, district: DistrictDep,
              session: SessionDep, user: WriterDep) -> dict[str, object]:
    """Check out (volunteer); the hours served within the activity's window are credited."""
    lon, lat = body.in_wgs84()
    row, entry = attendance.check_out(session, district, activity_id, user=user, code=body.code,
                                      lon=lon, lat=lat)
    session.commit()
    return attendance.attendance_public(row, entry)
