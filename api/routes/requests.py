"""Service requests: 点单 (create), 派单 (dispatch), 接单 (accept), 评单 (review) and the rest.

The workbench's 驳回 (reject), 合并 (merge) and 改派 (redispatch) are actions here too. An order
the caller may not see is 404 to every action as to GET, whatever the reason (another resident's,
another team's, outside a 所/站 account's area), exactly as for an id that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import (
    CrsDep,
    DistrictDep,
    IdempotencyKeyDep,
    OutCrsDep,
    ReaderDep,
    ReadSessionDep,
    SessionDep,
    WriterDep,
)
from api.domain import RequestState
from api.schemas.dispatch import (
    CompleteBody,
    DispatchBody,
    MergeBody,
    NoteBody,
    RejectBody,
    RequestCreate,
    RequestList,
    RequestPublic,
    ReviewBody,
)
from api.services import dispatch, requests_query
from api.services.idempotency import Outcome
from geo import Crs, geojson_from_wgs84, to_wgs84

router = APIRouter(prefix="/requests", tags=["requests"])

_NUMBER = r"-?\d+(\.\d+)?"
_BBOX = rf"^{_NUMBER}(,{_NUMBER}){{3}}$"
#: Ids and offsets fit a 32-bit integer column on every backend.
MAX_ID = 2_147_483_647
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="Service request id")]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/problem+json": {}}}
    for status, text in (
        (401, "No or invalid bearer token (unauthorized)"),
        (403, "The caller sees the request but its role may not do this, or it is not theirs "
              "to do: not the leader of the team it is dispatched to, not their own order "
              "(forbidden)"),
        (404, "No such request, or one the caller may not see (not_found)"),
        (409, "The action does not fit the current state (invalid_transition, with `state`), "
              "or no team can take it (team_unavailable, no_eligible_team)"),
        (422, "Invalid body, unknown_category, out_of_area, bad_merge_target or "
              "idempotency_conflict"),
    )
}


def answer(outcome: Outcome, out_crs: Crs = Crs.WGS84) -> JSONResponse:
    """Turn a service outcome into the HTTP answer (a replay carries ``Idempotent-Replayed``).

    The outcome (stored for replays) is WGS84; its ``lon``/``lat`` are given in ``out_crs``.
    """
    headers = {"Location": outcome.location} if outcome.location else {}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(geojson_from_wgs84(outcome.body, crs=out_crs),
                        status_code=outcome.status, headers=headers)


def parse_bbox(
    bbox: str | None, crs: Crs = Crs.WGS84
) -> tuple[float, float, float, float] | None:
    """Read ``minlon,minlat,maxlon,maxlat`` given in ``crs`` as a WGS84 box.

    A box in GCJ-02 or BD-09 becomes the WGS84 envelope of its four converted corners.
    """
    if bbox is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    xs, ys = to_wgs84(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]), crs=crs)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


@router.post("", status_code=201, response_model=RequestPublic, responses=_PROBLEMS)
def create_request(
    body: RequestCreate,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """点单: a resident (or a volunteer, a resident too) orders a service (201, Location)."""
    return answer(dispatch.create_request(session, district, user, body.in_wgs84(),
                                          idempotency_key=idempotency_key), out_crs)


@router.get("", response_model=RequestList, responses=_PROBLEMS)
def list_requests(
    district: DistrictDep,
    session: ReadSessionDep,
    user: ReaderDep,
    state: Annotated[RequestState | None, Query(description="Only requests in this state")] = None,
    bbox: Annotated[
        str | None,
        Query(pattern=_BBOX,
              description="minlon,minlat,maxlon,maxlat, in `crs`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    crs: CrsDep = Crs.WGS84,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """List the requests the caller may see, newest first.

    Residents: their own; volunteers: their own and those dispatched to the teams they lead;
    teams: theirs and the open pool of their categories; 所/站 accounts: their area's;
    dispatchers and admins: all.
    """
    page = requests_query.list_requests(session, district, user, state=state,
                                        bbox=parse_bbox(bbox, crs), limit=limit, offset=offset)
    return geojson_from_wgs84(page, crs=out_crs)


@router.get("/{request_id}", response_model=RequestPublic, responses=_PROBLEMS)
def get_request(
    request_id: RequestId,
    district: DistrictDep,
    session: ReadSessionDep,
    user: ReaderDep,
    out_crs: OutCrsDep = Crs.WGS84,
) -> dict[str, Any]:
    """Show a request's state and history."""
    return geojson_from_wgs84(requests_query.get_request(session, district, user, request_id),
                              crs=out_crs)


@router.post("/{request_id}/dispatch", response_model=RequestPublic, responses=_PROBLEMS)
def dispatch_request(
    request_id: RequestId,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    body: DispatchBody | None = None,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """派单 (dispatcher): to ``team_id``, or to the nearest capable team with free capacity."""
    return answer(dispatch.act(session, district, user, request_id, "dispatch",
                               body or DispatchBody(), idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/accept", response_model=RequestPublic, responses=_PROBLEMS)
def accept_request(
    request_id: RequestId,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """接单: a team account takes a request dispatched to it, or an open one of its category (抢单).

    A volunteer who leads a team accepts only what is dispatched to that team: the open pool is
    for team accounts (403 otherwise, when the leader sees the order at all).
    """
    return answer(dispatch.act(session, district, user, request_id, "accept",
                               idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/decline", response_model=RequestPublic, responses=_PROBLEMS)
def decline_request(
    request_id: RequestId,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    body: NoteBody | None = None,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """拒单 (assigned team): the request goes back to the pool for another team."""
    return answer(dispatch.act(session, district, user, request_id, "decline",
                               body or NoteBody(), idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/complete", response_model=RequestPublic, responses=_PROBLEMS)
def complete_request(
    request_id: RequestId,
    body: CompleteBody,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """完成 (assigned team): the hours served earn the team volunteer points."""
    return answer(dispatch.act(session, district, user, request_id, "complete", body,
                               idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/review", response_model=RequestPublic, responses=_PROBLEMS)
def review_request(
    request_id: RequestId,
    body: ReviewBody,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """评单 (the resident who ordered it, or the volunteer who did): 1-5 stars and a comment."""
    return answer(dispatch.act(session, district, user, request_id, "review", body,
                               idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/cancel", response_model=RequestPublic, responses=_PROBLEMS)
def cancel_request(
    request_id: RequestId,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    body: NoteBody | None = None,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """取消 (who ordered it, a dispatcher or an admin) while the request is still open."""
    return answer(dispatch.act(session, district, user, request_id, "cancel",
                               body or NoteBody(), idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/reject", response_model=RequestPublic, responses=_PROBLEMS)
def reject_request(
    request_id: RequestId,
    body: RejectBody,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """驳回 (dispatcher, admin, 所/站 in its area): a waiting order refused, the reason shown."""
    return answer(dispatch.act(session, district, user, request_id, "reject", body,
                               idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/merge", response_model=RequestPublic, responses=_PROBLEMS)
def merge_request(
    request_id: RequestId,
    body: MergeBody,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """合并: a waiting duplicate joins another open order of the same category (``into``)."""
    return answer(dispatch.act(session, district, user, request_id, "merge", body,
                               idempotency_key=idempotency_key), out_crs)


@router.post("/{request_id}/redispatch", response_model=RequestPublic, responses=_PROBLEMS)
def redispatch_request(
    request_id: RequestId,
    district: DistrictDep,
    session: SessionDep,
    user: WriterDep,
    body: DispatchBody | None = None,
    idempotency_key: IdempotencyKeyDep = None,
    out_crs: OutCrsDep = Crs.WGS84,
) -> JSONResponse:
    """改派: a dispatched or accepted order to ``team_id``, or to the next nearest capable team."""
    return answer(dispatch.act(session, district, user, request_id, "redispatch",
                               body or DispatchBody(), idempotency_key=idempotency_key), out_crs)
