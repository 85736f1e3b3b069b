"""Volunteers: registration, the caller's own profile, and team membership."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import (
    DistrictDep,
    MaybeReaderDep,
    ReaderDep,
    ReadSessionDep,
    SessionDep,
    WriterDep,
)
from api.domain import HoursKind
from api.errors import ApiError
from api.schemas.volunteers import (
    HoursEntryPublic,
    HoursProposal,
    MemberCreate,
    MyRedemption,
    MyRedemptionList,
    MySignup,
    MySignupList,
    Ranking,
    ServiceRecord,
    VolunteerCreate,
    VolunteerList,
    VolunteerPublic,
    VolunteerRegistered,
)
from api.services import activities, ledger, store, volunteers
from api.services.certificate import certificate_html
from api.services.dispatch_errors import NotFoundError

router = APIRouter(tags=["volunteers"])

VolunteerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
TeamId = Annotated[str, Path(min_length=1, max_length=96, description="Team id")]
_PRIVATE = {"Cache-Control": "no-store", "Vary": "Authorization"}


@router.post("/volunteers", status_code=201, response_model=VolunteerRegistered)
def register(body: VolunteerCreate, district: DistrictDep, session: SessionDep,
             caller: MaybeReaderDep) -> JSONResponse:
    """Register as a volunteer (实名注册); 201 with the API token, shown once.

    A resident signed in by code with this phone (its bearer token sent) becomes the
    volunteer itself; the answer's token replaces theirs. A phone that signs in to another
    account: 409 ``phone_registered`` (sign in with it first).
    """
    volunteer, token = volunteers.register(
        session, district, name=body.name, phone=body.phone, id_card=body.id_card,
        categories=body.categories, caller_id=caller.id if caller is not None else None)
    session.commit()
    me = volunteers.volunteer_public(session, volunteer, None)
    answer = VolunteerRegistered(volunteer=VolunteerPublic(**me), token=token)
    return JSONResponse(answer.model_dump(mode="json"), status_code=201,
                        headers={**_PRIVATE, "Location": "/volunteers/me"})


@router.get("/volunteers/me", response_model=VolunteerPublic)
def me(session: ReadSessionDep, user: ReaderDep) -> JSONResponse:
    """Show the calling volunteer's profile and teams (phone and ID card masked)."""
    volunteer = volunteers.volunteer_of(session, user)
    body = VolunteerPublic(**volunteers.volunteer_public(session, volunteer, user))
    return JSONResponse(body.model_dump(mode="json"), headers=_PRIVATE)


@router.get("/volunteers/me/record", response_model=ServiceRecord)
def my_record(session: ReadSessionDep, user: ReaderDep) -> JSONResponse:
    """Show the caller's hours, star level, points balance and ledger lines."""
    record = ledger.service_record(session, volunteers.volunteer_of(session, user))
    return JSONResponse(ServiceRecord(**record).model_dump(mode="json"), headers=_PRIVATE)


@router.get("/volunteers/me/signups", response_model=MySignupList)
def my_signups(district: DistrictDep, session: ReadSessionDep, user: ReaderDep) -> JSONResponse:
    """List the caller's sign-ups: activity, place, state, waitlist place, checked in and out."""
    items = activities.my_signups(session, district, user)
    body = MySignupList(items=[MySignup(**i) for i in items])
    return JSONResponse(body.model_dump(mode="json"), headers=_PRIVATE)


@router.get("/volunteers/me/redemptions", response_model=MyRedemptionList)
def my_redemptions(district: DistrictDep, session: ReadSessionDep,
                   user: ReaderDep) -> JSONResponse:
    """List the caller's redemptions in the points store, newest first, with pick-up codes."""
    items = store.my_redemptions(session, district, user)
    body = MyRedemptionList(items=[MyRedemption(**i) for i in items])
    return JSONResponse(body.model_dump(mode="json"), headers=_PRIVATE)


@router.get("/volunteers/me/certificate", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}}})
def my_certificate(district: DistrictDep, session: ReadSessionDep,
                   user: ReaderDep) -> HTMLResponse:
    """Print a proof of service hours (志愿服务证明, zh-CN HTML)."""
    volunteer = volunteers.volunteer_of(session, user)
    record = ledger.service_record(session, volunteer)
    profile = volunteers.volunteer_public(session, volunteer, user)
    html = certificate_html(record, district=district.name, phone=profile["phone"],
                            teams=[t["name"] for t in profile["teams"]],
                            titles=activities.activity_titles(session, record["entries"]))
    return HTMLResponse(html, headers=_PRIVATE)


@router.get("/leaderboard/volunteers", response_model=Ranking)
def ranking(
    district: DistrictDep, session: ReadSessionDep,
    month: Annotated[str | None, Query(pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$",
                                       description="YYYY-MM; default: all time")] = None,
    by: Annotated[str, Query(pattern="^(volunteer|team)$")] = "volunteer",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, object]:
    """Rank volunteers (or teams) by approved service hours, for a month or all time."""
    return ledger.volunteer_ranking(session, district, month=month, by_team=by == "team",
                                    limit=limit)


@router.post("/volunteers/{volunteer_id}/hours", status_code=201,
             response_model=HoursEntryPublic)
def propose_hours(volunteer_id: VolunteerId, body: HoursProposal, district: DistrictDep,
                  session: SessionDep, user: WriterDep) -> dict[str, object]:
    """Propose a correction or back-fill (补录) of hours (team leader); an admin approves it."""
    if body.kind == HoursKind.ACTIVITY or body.hours == 0:
        raise ApiError(422, "invalid_hours", "时长记录有误",
                       "补录或更正须为 correction 或 backfill，且时长不为 0")
    entry = ledger.propose(session, district, volunteer_id, hours=body.hours, kind=body.kind,
                           note=body.note, activity_id=body.activity_id, actor=user)
    session.commit()
    return ledger.entry_public(entry)


@router.post("/hours/{entry_id}/{decision}", response_model=HoursEntryPublic)
def decide_hours(
    entry_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    decision: Annotated[str, Path(pattern="^(approve|reject)$")],
    district: DistrictDep, session: SessionDep, user: WriterDep,
) -> dict[str, object]:
    """Approve (points follow) or reject a pending correction or back-fill (admin)."""
    entry = ledger.decide(session, district, entry_id, approve=decision == "approve", actor=user)
    session.commit()
    return ledger.entry_public(entry)


@router.get("/volunteers/{volunteer_id}", response_model=VolunteerPublic)
def read(volunteer_id: VolunteerId, district: DistrictDep, session: ReadSessionDep,
         user: ReaderDep) -> JSONResponse:
    """Show a volunteer to admins, its team leaders (whole phone) and itself."""
    volunteer = volunteers.find_volunteer(session, district, volunteer_id)
    if not volunteers.may_view(session, user, volunteer):
        msg = f"没有编号为 {volunteer_id} 的志愿者"
        raise NotFoundError(msg, volunteer_id=volunteer_id)
    body = VolunteerPublic(**volunteers.volunteer_public(session, volunteer, user))
    return JSONResponse(body.model_dump(mode="json"), headers=_PRIVATE)


@router.post("/teams/{team_id}/members", status_code=201, response_model=VolunteerPublic)
def add_member(team_id: TeamId, body: MemberCreate, district: DistrictDep,
               session: SessionDep, user: WriterDep) -> JSONResponse:
    """Add a volunteer to a team (admin or its leader); only an admin names a leader."""
    member = volunteers.add_member(session, district, team_id, volunteer_id=body.volunteer_id,
                                   leader=body.leader, actor=user)
    session.commit()
    volunteer = volunteers.find_volunteer(session, district, member.volunteer_id)
    body_out = VolunteerPublic(**volunteers.volunteer_public(session, volunteer, user))
    return JSONResponse(body_out.model_dump(mode="json"), status_code=201, headers=_PRIVATE)


@router.get("/teams/{team_id}/members", response_model=VolunteerList)
def members(team_id: TeamId, district: DistrictDep, session: ReadSessionDep,
            user: ReaderDep) -> JSONResponse:
    """List a team's volunteers for an admin or its leader (whole phone numbers)."""
    items = volunteers.team_members(session, district, team_id, viewer=user)
    body = VolunteerList(items=[VolunteerPublic(**i) for i in items])
    return JSONResponse(body.model_dump(mode="json"), headers=_PRIVATE)
