"""Shared helpers of the API tests: the real app on a database of the test's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient


@contextmanager
def app_client(
    db_url: str, *, customize: Callable[[FastAPI], None] | None = None,
    raise_server_exceptions: bool = True,
) -> Iterator[TestClient]:
    """Run the real app (lifespan included) on ``db_url``, as ``PRACTICE_CIRCLE_DATABASE_URL``.

    The variable holds for the life of the client (the app reads its settings per request)
    and is restored afterwards; ``customize`` may add routes before the app starts.
    """
    from api.main import create_app
    from api.settings import get_settings

    old = os.environ.get("PRACTICE_CIRCLE_DATABASE_URL")
    os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = db_url
    get_settings.cache_clear()
    try:
        app = create_app()
        if customize is not None:
            customize(app)
        with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
            yield client
    finally:
        if old is None:
            os.environ.pop("PRACTICE_CIRCLE_DATABASE_URL", None)
        else:
            os.environ["PRACTICE_CIRCLE_DATABASE_URL"] = old
        get_settings.cache_clear()
