"""The points store (积分超市): rewards on offer, redemption for points, pick-up by code."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import DistrictDep, IdempotencyKeyDep, LookupSessionDep, SessionDep, WriterDep
from api.schemas.volunteers import RedemptionPublic, RewardCreate, RewardList, RewardPublic
from api.services import store
from api.storage.models import Position

router = APIRouter(tags=["points store"])

RewardId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PickupCode = Annotated[str, Path(min_length=6, max_length=16, pattern="^[0-9A-Za-z]+$")]
_PRIVATE = {"Cache-Control": "no-store", "Vary": "Authorization"}
_REDEEM_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/problem+json": {}}}
    for status, text in (
        (401, "No or invalid bearer token (unauthorized)"),
        (403, "Not a volunteer (forbidden)"),
        (404, "No such reward (not_found)"),
        (409, "Too few points (insufficient_points, with `balance` and `price`) or none left "
              "(out_of_stock)"),
        (422, "idempotency_conflict: the Idempotency-Key was used for another request"),
    )
}


@router.get("/rewards", response_model=RewardList)
def rewards(district: DistrictDep, session: LookupSessionDep) -> dict[str, object]:
    """List the rewards on offer, cheapest first."""
    return {"items": store.list_rewards(session, district)}


@router.post("/rewards", status_code=201, response_model=RewardPublic)
def add_reward(body: RewardCreate, district: DistrictDep, session: SessionDep,
               user: WriterDep) -> dict[str, object]:
    """List a reward with its stock and price, picked up at a position (admin)."""
    reward = store.add_reward(session, district, body.model_dump(), actor=user)
    session.commit()
    return store.reward_public(reward, session.get(Position, reward.site_id))


@router.post("/rewards/{reward_id}/redemptions", status_code=201,
             response_model=RedemptionPublic, responses=_REDEEM_PROBLEMS)
def redeem(reward_id: RewardId, district: DistrictDep, session: SessionDep, user: WriterDep,
           idempotency_key: IdempotencyKeyDep = None) -> JSONResponse:
    """Exchange points for a reward (volunteer); the answer carries the pick-up code.

    With an ``Idempotency-Key`` a retry (a lost answer) gets the first answer again, marked
    ``Idempotent-Replayed: true``, and the points are taken once.
    """
    outcome = store.redeem_once(session, district, reward_id, user=user,
                                idempotency_key=idempotency_key)
    body = RedemptionPublic(**outcome.body)
    headers = dict(_PRIVATE)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body.model_dump(mode="json"), status_code=outcome.status,
                        headers=headers)


@router.post("/redemptions/{code}/pickup", response_model=RedemptionPublic)
def pick_up(code: PickupCode, district: DistrictDep, session: SessionDep,
            user: WriterDep) -> dict[str, object]:
    """Confirm a pick-up by its code (核销): admin, or a team seated at the position; once."""
    redemption = store.pick_up(session, district, code, actor=user)
    session.commit()
    return store.redemption_public(redemption, with_code=False)
