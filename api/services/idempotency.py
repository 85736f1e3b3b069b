"""Run a write once per ``Idempotency-Key`` and replay its first answer to retries.

A POST carrying an ``Idempotency-Key`` stores its first successful answer in the same
transaction as its effect; a retry gets that answer again, a different request under the same key
gets 422 (``idempotency_conflict``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.services.dispatch_errors import IdempotencyConflictError
from api.storage.models import IdempotencyRecord, User


@dataclass(frozen=True)
class Outcome:
    """An answer to a POST: status, JSON body, Location, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    location: str | None = None
    replayed: bool = False


def fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    """Hash what makes two requests the same request: method, path and body."""
    payload = {"method": method, "path": path,
               "body": body.model_dump(mode="json") if body is not None else None}
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Outcome:
    if record.fingerprint != fingerprint:
        msg = "该 Idempotency-Key 已用于另一个不同的请求；请为新请求使用新的键"
        raise IdempotencyConflictError(msg, idempotency_key=record.key)
    return Outcome(record.status, json.loads(record.body), record.location, replayed=True)


def run_once(
    session: Session, user: User, key: str | None, fingerprint: str, run: Callable[[], Outcome]
) -> Outcome:
    """Run a write once per key and commit: the first success is stored and replayed after.

    Raises
    ------
    IdempotencyConflictError
        If the key was used before for a request with another fingerprint.
    """
    if key is not None:
        prior = session.get(IdempotencyRecord, (user.id, key))
        if prior is not None:
            return _replay(prior, fingerprint)
    outcome = run()
    if key is not None:
        session.add(IdempotencyRecord(
            user_id=user.id, key=key, fingerprint=fingerprint, status=outcome.status,
            body=json.dumps(outcome.body, ensure_ascii=False), location=outcome.location,
        ))
    try:
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same key committed first: its effect stands, ours is
        # rolled back, and its answer is the answer.
        session.rollback()
        prior = session.get(IdempotencyRecord, (user.id, key)) if key is not None else None
        if prior is None:
            raise
        return _replay(prior, fingerprint)
    return outcome
