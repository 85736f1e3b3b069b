"""The points store (积分超市): rewards with stock, redeemed for points, picked up by code.

A redemption takes the reward's and the volunteer's row locks (``FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` queues writers), checks the balance (the points ledger's sum) and
the stock, then writes the negative points line, the lower stock and the redemption with a
unique pick-up code in one transaction. Check constraints keep stock at zero or more; the
pick-up (核销) marks the code used with a conditional update, so a code is used once.

A redemption carrying an ``Idempotency-Key`` happens once per key (:mod:`api.services.idempotency`):
a phone retrying after a lost answer gets the first answer, its code included, and pays once.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.domain import Role
from api.schemas.volunteers import RedemptionPublic
from api.services.dispatch_errors import DispatchError, ForbiddenError, NotFoundError
from api.services.idempotency import Outcome, fingerprint, run_once
from api.services.keys import READABLE
from api.services.leaders import led_teams
from api.services.ledger import points_balance
from api.services.volunteers import volunteer_of
from api.storage.models import (
    IdempotencyRecord,
    PointsLine,
    Position,
    Redemption,
    Reward,
    Team,
    User,
    Volunteer,
    as_utc,
    utcnow,
)
from geo import District

#: Characters of a pick-up code.
PICKUP_CODE_LENGTH = 10


class InvalidRewardError(DispatchError):
    """A reward with a bad position, price or stock."""


class InsufficientPointsError(DispatchError):
    """The volunteer's balance is below the price (``balance``, ``price``)."""


class OutOfStockError(DispatchError):
    """The reward is sold out or withdrawn."""


class CodeUsedError(DispatchError):
    """The pick-up code was confirmed already."""


class _RetryRaced(Exception):  # noqa: N818 - a signal, not an error anyone sees
    """A retry under the same key committed while this one waited for the locks."""


def _admin(user: User) -> None:
    if user.role != Role.ADMIN:
        msg = "只有管理员可以上架奖品"
        raise ForbiddenError(msg, role=user.role)


def add_reward(session: Session, district: District, data: dict[str, Any], *,
               actor: User) -> Reward:
    """List a reward at an open position (admin).

    Raises
    ------
    ForbiddenError, InvalidRewardError
    """
    _admin(actor)
    position = session.get(Position, data["site_id"])
    if position is None or position.district != district.name or not position.active:
        msg = f"阵地 {data['site_id']!r} 不存在或已关闭"
        raise InvalidRewardError(msg, field="site_id")
    reward = Reward(district=district.name, site_id=position.site_id, name=data["name"].strip(),
                    description=data.get("description") or "",
                    price_points=int(data["price_points"]), stock=int(data["stock"]),
                    active=True)
    session.add(reward)
    session.flush()
    return reward


def reward_public(reward: Reward, position: Position | None = None) -> dict[str, Any]:
    """Describe a reward."""
    return {"id": reward.id, "name": reward.name, "description": reward.description,
            "price_points": reward.price_points, "stock": reward.stock, "active": reward.active,
            "site_id": reward.site_id, "site_name": position.name if position else None}


def list_rewards(session: Session, district: District) -> list[dict[str, Any]]:
    """List the district's rewards on offer, cheapest first."""
    rows = session.execute(
        select(Reward, Position).join(Position, Position.site_id == Reward.site_id)
        .where(Reward.district == district.name, Reward.active.is_(True))
        .order_by(Reward.price_points, Reward.id)).tuples().all()
    return [reward_public(r, p) for r, p in rows]


def _new_code() -> str:
    return "".join(secrets.choice(READABLE) for _ in range(PICKUP_CODE_LENGTH))


def _lock(session: Session, district: District, reward_id: int,
          volunteer: Volunteer) -> Reward:
    """Take the reward's, then the volunteer's row lock (always in this order: no deadlock)."""
    reward = session.scalar(select(Reward).where(Reward.id == reward_id).with_for_update()
                            .execution_options(populate_existing=True))
    if reward is None or reward.district != district.name:
        msg = f"没有编号为 {reward_id} 的奖品"
        raise NotFoundError(msg, reward_id=reward_id)
    session.execute(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    return reward


def _spend(session: Session, reward: Reward, volunteer: Volunteer) -> Redemption:
    """Check stock and balance under the locks, then write points, stock and the code."""
    if not reward.active or reward.stock < 1:
        msg = f"{reward.name} 已兑完"
        raise OutOfStockError(msg, reward_id=reward.id)
    balance = points_balance(session, volunteer.id)
    if balance < reward.price_points:
        msg = f"积分不足：需要 {reward.price_points} 分，现有 {balance} 分"
        raise InsufficientPointsError(msg, balance=balance, price=reward.price_points)
    reward.stock -= 1
    redemption = Redemption(reward_id=reward.id, volunteer_id=volunteer.id,
                            points=reward.price_points, code=_new_code())
    session.add(redemption)
    session.flush()
    session.add(PointsLine(volunteer_id=volunteer.id, points=-reward.price_points,
                           reason="redeem", redemption_id=redemption.id))
    session.flush()
    return redemption


def redeem(session: Session, district: District, reward_id: int, *,
           user: User) -> Redemption:
    """Exchange points for a reward: points, stock and a pick-up code in one transaction.

    The caller commits. :func:`redeem_once` is the same, once per ``Idempotency-Key``.

    Raises
    ------
    ForbiddenError, NotFoundError, OutOfStockError, InsufficientPointsError
    """
    volunteer = volunteer_of(session, user)
    return _spend(session, _lock(session, district, reward_id, volunteer), volunteer)


def redeem_once(session: Session, district: District, reward_id: int, *, user: User,
                idempotency_key: str | None = None) -> Outcome:
    """Redeem and commit, once per ``Idempotency-Key``: a retry replays the first answer.

    Two requests with one key may both pass :func:`~api.services.idempotency.run_once`'s
    first look before either commits (PostgreSQL; SQLite queues writers from the start). The
    loser waits on the locks, then finds the winner's key: it writes nothing and replays,
    rather than paying twice or answering ``insufficient_points`` for points it spent itself.

    Raises
    ------
    ForbiddenError, NotFoundError, OutOfStockError, InsufficientPointsError
    IdempotencyConflictError
        If the key was used for another request (another reward, or another endpoint).
    """
    key = fingerprint("POST", f"/rewards/{reward_id}/redemptions?district={district.name}",
                      None)

    def run() -> Outcome:
        volunteer = volunteer_of(session, user)
        reward = _lock(session, district, reward_id, volunteer)
        if idempotency_key is not None and session.scalar(
                select(IdempotencyRecord.key).where(IdempotencyRecord.user_id == user.id,
                                                    IdempotencyRecord.key == idempotency_key)):
            raise _RetryRaced
        redemption = _spend(session, reward, volunteer)
        answer = RedemptionPublic(**redemption_public(redemption, with_code=True))
        return Outcome(201, answer.model_dump(mode="json"))

    try:
        return run_once(session, user, idempotency_key, key, run)
    except _RetryRaced:
        session.rollback()  # nothing was written; the winner's answer is committed
        return run_once(session, user, idempotency_key, key, run)


def pick_up(session: Session, district: District, code: str, *, actor: User) -> Redemption:
    """Confirm a pick-up by its code (核销): admin, or staff of a team seated at the position.

    Raises
    ------
    NotFoundError, ForbiddenError, CodeUsedError
    """
    typed = code.strip().upper()
    redemption = session.scalar(select(Redemption).where(Redemption.code == typed))
    reward = None if redemption is None else session.get(Reward, redemption.reward_id)
    if redemption is None or reward is None or reward.district != district.name:
        msg = "兑换码不存在"
        raise NotFoundError(msg)
    if actor.role != Role.ADMIN:
        seated = set(session.scalars(select(Team.team_id).where(Team.site_id == reward.site_id)))
        if not seated & led_teams(session, actor):
            msg = "只有管理员或该阵地的队伍可以核销"
            raise ForbiddenError(msg, role=actor.role)
    done = session.execute(
        update(Redemption).where(Redemption.id == redemption.id,
                                 Redemption.picked_up_at.is_(None))
        .values(picked_up_at=utcnow(), picked_up_by=actor.id))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        msg = "这个兑换码已核销过"
        raise CodeUsedError(msg)
    session.refresh(redemption)
    return redemption


def redemption_public(redemption: Redemption, *, with_code: bool) -> dict[str, Any]:
    """Describe a redemption (the code only to its volunteer and to staff confirming it)."""
    return {"id": redemption.id, "reward_id": redemption.reward_id,
            "volunteer_id": redemption.volunteer_id, "points": redemption.points,
            "code": redemption.code if with_code else None,
            "created_at": as_utc(redemption.created_at),
            "picked_up_at": (None if redemption.picked_up_at is None
                             else as_utc(redemption.picked_up_at))}


def my_redemptions(session: Session, district: District, user: User) -> list[dict[str, Any]]:
    """List the calling volunteer's redemptions, newest first, with their codes.

    Raises
    ------
    ForbiddenError
        If the caller is not a volunteer.
    """
    volunteer = volunteer_of(session, user)
    rows = session.execute(
        select(Redemption, Reward, Position)
        .join(Reward, Reward.id == Redemption.reward_id)
        .join(Position, Position.site_id == Reward.site_id)
        .where(Redemption.volunteer_id == volunteer.id, Reward.district == district.name)
        .order_by(Redemption.created_at.desc(), Redemption.id.desc())).tuples().all()
    return [{**redemption_public(r, with_code=True), "reward_name": w.name,
             "site_id": w.site_id, "site_name": p.name} for r, w, p in rows]
