"""Pydantic schemas of phone sign-in (``/auth``); the signed-in user is ``UserPublic``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.dispatch import UserPublic


class CodeRequest(BaseModel):
    """Ask for a one-time sign-in code to be sent to a phone."""

    phone: str = Field(min_length=3, max_length=40, description="Mainland mobile number",
                       examples=["13812341234"])


class CodeSent(BaseModel):
    """The same answer for every valid number, known or not."""

    sent: bool = True
    expires_in_s: int = Field(description="Seconds the code works")
    resend_after_s: int = Field(description="Seconds before another code may be asked for")


class SessionCreate(BaseModel):
    """Sign in with the phone and the code sent to it."""

    model_config = ConfigDict(populate_by_name=True)

    phone: str = Field(min_length=3, max_length=40, examples=["13812341234"])
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", description="The 6-digit code",
                      examples=["123456"])
    for_: Literal["phone", "desk"] = Field(
        default="phone", alias="for",
        description="Where the session is used: ``desk`` signs in only an existing dispatcher, "
                    "station or admin account (else 403 not_staff, and no token changes); "
                    "``phone`` (default) also makes a new resident for an unknown number")


class SessionCreated(BaseModel):
    """A new bearer token (shown once; it replaces the user's previous one) and its user."""

    token: str
    user: UserPublic
