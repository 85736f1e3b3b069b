"""Volunteers: registration, the caller's own profile, and team membership."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import DistrictDep, ReaderDep, ReadSessionDep, SessionDep, WriterDep
from api.schemas.volunteers import (
    MemberCreate,
    VolunteerCreate,
    VolunteerList,
    VolunteerPublic,
    VolunteerRegistered,
)
from api.services import volunteers
from api.services.dispatch_errors import NotFoundError

router = APIRouter(tags=["volunteers"])

VolunteerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
TeamId = Annotated[str, Path(min_length=1, max_length=96, description="Team id")]
_PRIVATE = {"Cache-Control": "no-store", "Vary": "Authorization"}


@router.post("/volunteers", status_code=201, response_model=VolunteerRegistered)
def register(body: VolunteerCreate, district: DistrictDep, session: SessionDep) -> JSONResponse:
    """Register as a volunteer (实名注册); 201 with the API token, shown once."""
    volunteer, token = volunteers.register(
        session, district, name=body.name, phone=body.phone, id_card=body.id_card,
        categories=body.categories)
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
