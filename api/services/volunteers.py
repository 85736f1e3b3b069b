"""Register volunteers (实名注册), keep their teams, and show each caller only what it may see.

A phone number is checked with ``phonenumbers`` (a mainland mobile number) and shown whole only
to admins and to the leaders of the volunteer's teams; everyone else, the volunteer included,
reads ``138****1234``. An ID-card number is checked with ``python-stdnum`` (GB 11643: region,
birth date and the ISO 7064 MOD 11-2 check digit), stored only encrypted (Fernet, key from the
settings) and shown masked.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from api.domain import Role
from api.services.accounts import create_user, hash_phone, rotate_token
from api.services.dispatch_errors import DispatchError, ForbiddenError, NotFoundError
from api.services.keys import secret_key
from api.services.leaders import led_teams
from api.services.registry import check_categories
from api.services.requests_view import mask_contact
from api.settings import get_settings
from api.storage.models import Team, TeamMember, User, Volunteer, as_utc
from geo import District


class InvalidVolunteerError(DispatchError):
    """A registration or membership with a bad phone, ID-card number or team."""


class AlreadyRegisteredError(DispatchError):
    """A phone number already registered in the district."""


class PhoneRegisteredError(AlreadyRegisteredError):
    """The phone number signs in to an account that is not the caller's."""


# --------------------------------------------------------------------------- phone and ID card


def mobile_number(text: str) -> str:
    """Return a mainland mobile number as its 11 digits (``+86``, spaces and dashes allowed).

    Raises
    ------
    InvalidVolunteerError
        If it is not a valid mainland China mobile number.
    """
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as e:
        msg = f"手机号码无法识别：{text[:40]!r}"
        raise InvalidVolunteerError(msg, field="phone") from e
    kind = phonenumbers.number_type(number)
    if (number.country_code != 86 or not phonenumbers.is_valid_number(number)
            or kind not in (phonenumbers.PhoneNumberType.MOBILE,
                            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)):
        msg = f"不是有效的中国大陆手机号码：{text[:40]!r}"
        raise InvalidVolunteerError(msg, field="phone")
    return str(number.national_number)


def id_card_number(text: str) -> str:
    """Return a resident ID-card number (GB 11643, 18 characters) in its compact form.

    Raises
    ------
    InvalidVolunteerError
        If the length, region, birth date or check digit is wrong (the message says which,
        never repeating the number).
    """
    try:
        return str(ric.validate(text))
    except ValidationError as e:
        why = {"InvalidChecksum": "校验位不正确", "InvalidLength": "长度应为 18 位",
               "InvalidFormat": "格式不正确", "InvalidComponent": "出生日期或地区码不正确"}
        msg = f"身份证号码{why.get(type(e).__name__, '无效')}"
        raise InvalidVolunteerError(msg, field="id_card") from None


def mask_id_card(number: str) -> str:
    """Keep the first and last characters only: ``1****************X``."""
    return number[0] + "*" * (len(number) - 2) + number[-1]


@cache
def _fernet(key: str, cache_dir: str) -> Fernet:
    return Fernet(secret_key(key, cache=Path(cache_dir), name="id_card"))


def id_card_cipher() -> Fernet:
    """Return the cipher of ID-card numbers (``PRACTICE_CIRCLE_ID_CARD_KEY`` or the key file)."""
    settings = get_settings()
    return _fernet(settings.id_card_key, str(settings.cache))


# ------------------------------------------------------------------------------ who is who


def volunteer_of(session: Session, user: User) -> Volunteer:
    """Return the calling user's volunteer profile.

    Raises
    ------
    ForbiddenError
        If the user is not a volunteer.
    """
    volunteer = None
    if user.role == Role.VOLUNTEER:
        volunteer = session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))
    if volunteer is None:
        msg = "只有注册志愿者可以这样做"
        raise ForbiddenError(msg, role=user.role)
    return volunteer


def teams_of(session: Session, volunteer_id: int) -> list[TeamMember]:
    """Return a volunteer's memberships."""
    return list(session.scalars(
        select(TeamMember).where(TeamMember.volunteer_id == volunteer_id)
        .order_by(TeamMember.team_id)))


def sees_phone(session: Session, viewer: User | None, volunteer: Volunteer) -> bool:
    """Tell whether a viewer may read a volunteer's whole phone number.

    Admins and the leaders of the volunteer's teams may; nobody else, the volunteer included.
    """
    if viewer is None:
        return False
    if viewer.role == Role.ADMIN:
        return True
    led = led_teams(session, viewer)
    return bool(led & {m.team_id for m in teams_of(session, volunteer.id)})


def volunteer_public(session: Session, volunteer: Volunteer, viewer: User | None) -> dict[str, Any]:
    """Describe a volunteer for a viewer: phone masked unless allowed, ID card always masked."""
    members = teams_of(session, volunteer.id)
    names = dict(session.execute(
        select(Team.team_id, Team.name).where(Team.team_id.in_([m.team_id for m in members]))
    ).tuples().all())
    return {
        "id": volunteer.id,
        "name": volunteer.name,
        "phone": (volunteer.phone if sees_phone(session, viewer, volunteer)
                  else mask_contact(volunteer.phone)),
        "id_card": volunteer.id_card_masked,
        "categories": [c for c in volunteer.categories.split(",") if c],
        "teams": [{"team_id": m.team_id, "name": names.get(m.team_id, ""), "leader": m.leader}
                  for m in members],
        "created_at": as_utc(volunteer.created_at),
    }


# ------------------------------------------------------------------------------ changes


def register(session: Session, district: District, *, name: str, phone: str,
             id_card: str | None, categories: list[str],
             caller_id: int | None = None) -> tuple[Volunteer, str]:
    """Register a volunteer: a user with role ``volunteer`` and its profile; return the token.

    A number that already signs in to an account (``users.phone_hash``: a resident who signed
    in by code, or a staff account made with ``--phone``) may be registered only by that
    account's own resident (``caller_id``): it becomes the volunteer in place (same user, its
    orders stay its own, a new token replaces its old one). Otherwise a new user is made.

    Raises
    ------
    InvalidVolunteerError
        If the phone or ID-card number is invalid.
    UnknownCategoryError
        If a category code is unknown.
    AlreadyRegisteredError
        If the phone number is registered in the district already;
        :class:`PhoneRegisteredError` if it signs in to an account that is not the caller's
        resident account.
    """
    number = mobile_number(phone)
    card = id_card_number(id_card) if id_card else None
    codes = check_categories(categories) if categories else ""
    taken = session.scalar(select(Volunteer.id).where(
        Volunteer.district == district.name, Volunteer.phone == number))
    if taken is not None:
        msg = "该手机号已注册为志愿者"
        raise AlreadyRegisteredError(msg)
    owner = session.scalar(select(User).where(User.phone_hash == hash_phone(number)))
    if owner is None:
        user, token = create_user(session, role=Role.VOLUNTEER, name=name)
    elif owner.id == caller_id and owner.role == Role.RESIDENT:
        user, token = owner, rotate_token(owner)
        user.role, user.name = Role.VOLUNTEER, name.strip()
    else:
        msg = ("该手机号已注册，请用该手机号登录后再申请成为志愿者" if owner.role == Role.RESIDENT
               else "该手机号已用于其他账号，不能注册为志愿者")
        raise PhoneRegisteredError(msg)
    volunteer = Volunteer(
        user_id=user.id, district=district.name, name=name.strip(), phone=number,
        id_card_cipher=id_card_cipher().encrypt(card.encode()).decode() if card else None,
        id_card_masked=mask_id_card(card) if card else None, categories=codes,
    )
    session.add(volunteer)
    try:
        session.flush()
    except IntegrityError as e:  # a concurrent registration of the same number won
        msg = "该手机号已注册为志愿者"
        raise AlreadyRegisteredError(msg) from e
    return volunteer, token


def find_volunteer(session: Session, district: District, volunteer_id: int) -> Volunteer:
    """Return a volunteer of the district.

    Raises
    ------
    NotFoundError
        If there is none with this id in the district.
    """
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None or volunteer.district != district.name:
        msg = f"没有编号为 {volunteer_id} 的志愿者"
        raise NotFoundError(msg, volunteer_id=volunteer_id)
    return volunteer


def may_view(session: Session, viewer: User, volunteer: Volunteer) -> bool:
    """Admins, the volunteer and the leaders of its teams may read a volunteer's profile."""
    return (viewer.role == Role.ADMIN or viewer.id == volunteer.user_id
            or sees_phone(session, viewer, volunteer))


def add_member(session: Session, district: District, team_id: str, *, volunteer_id: int,
               leader: bool, actor: User) -> TeamMember:
    """Add a volunteer to a team (admin or the team's leader); only an admin names leaders.

    Adding an existing member again updates its ``leader`` flag (admin) or changes nothing.

    Raises
    ------
    NotFoundError, ForbiddenError, InvalidVolunteerError
    """
    team = session.get(Team, team_id)
    if team is None or team.district != district.name:
        msg = f"没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    if actor.role != Role.ADMIN and (leader or team_id not in led_teams(session, actor)):
        msg = "只有管理员或本队队长可以添加队员（队长由管理员指定）"
        raise ForbiddenError(msg, role=actor.role)
    if not team.active:
        msg = f"队伍 {team.name} 已停用"
        raise InvalidVolunteerError(msg, field="team_id")
    volunteer = find_volunteer(session, district, volunteer_id)
    member = session.get(TeamMember, (team_id, volunteer.id))
    if member is None:
        member = TeamMember(team_id=team_id, volunteer_id=volunteer.id, leader=leader)
        session.add(member)
    elif actor.role == Role.ADMIN:
        member.leader = leader
    session.flush()
    return member


def team_members(session: Session, district: District, team_id: str, *,
                 viewer: User) -> list[dict[str, Any]]:
    """List a team's members for an admin or the team's leader (phones whole).

    Raises
    ------
    NotFoundError, ForbiddenError
    """
    team = session.get(Team, team_id)
    if team is None or team.district != district.name:
        msg = f"没有编号为 {team_id} 的队伍"
        raise NotFoundError(msg, team_id=team_id)
    if viewer.role != Role.ADMIN and team_id not in led_teams(session, viewer):
        msg = "只有管理员或本队队长可以查看队员名单"
        raise ForbiddenError(msg, role=viewer.role)
    rows = session.scalars(
        select(Volunteer).join(TeamMember, TeamMember.volunteer_id == Volunteer.id)
        .where(TeamMember.team_id == team_id).order_by(Volunteer.id))
    return [volunteer_public(session, v, viewer) for v in rows]
