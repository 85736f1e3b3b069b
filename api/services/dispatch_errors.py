"""Name the errors of the dispatch service; api/errors.py maps each to a problem+json answer.

Each carries a zh-CN message (the problem's ``detail``) and, in ``extra``, members added to the
problem body, such as the current ``state`` of a request an action did not fit.
"""

from __future__ import annotations

from typing import Any


class DispatchError(Exception):
    """Base of the dispatch errors: a zh-CN detail plus extra problem members and headers."""

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.extra: dict[str, Any] = extra
        self.headers: dict[str, str] = headers or {}


class UnauthorizedError(DispatchError):
    """No bearer token, or one that matches no active user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="practice-circle"'})


class ForbiddenError(DispatchError):
    """The user's role (or team) may not do this."""


class NotFoundError(DispatchError):
    """No such request or team, or one the user may not see."""


class InvalidTransitionError(DispatchError):
    """The action does not fit the request's current state (``extra["state"]``)."""


class TeamUnavailableError(DispatchError):
    """The team cannot take this request: wrong category, inactive or at capacity."""


class NoEligibleTeamError(DispatchError):
    """Automatic dispatch found no capable team with free capacity."""


class IdempotencyConflictError(DispatchError):
    """An ``Idempotency-Key`` reused with a different request."""
