"""Helpers of the volunteer, activity, ledger and store tests: problems and new volunteers."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"
_phones = itertools.count(1)


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """Check a problem+json answer's status and code; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code
    return dict(r.json())


def new_phone() -> str:
    """A mobile number no other test of the session has used."""
    return f"139{next(_phones):08d}"


def new_volunteer(c: TestClient, name: str = "志愿者") -> tuple[int, dict[str, str]]:
    """Register a volunteer; return its id and auth header."""
    r = c.post("/volunteers", json={"name": name, "phone": new_phone()})
    assert r.status_code == 201, r.text
    return r.json()["volunteer"]["id"], {"Authorization": f"Bearer {r.json()['token']}"}
