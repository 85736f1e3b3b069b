"""Shared by the map tests: what to do when the browser or the npm assets are missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: Set to ``1`` to skip the tests that need Debian's chromium, playwright or ``npm ci``'s assets.
SKIP_BROWSER_ENV = "PRACTICE_CIRCLE_SKIP_BROWSER"


def skip_or_fail(reason: str) -> NoReturn:
    """Fail for a missing browser or asset, unless ``PRACTICE_CIRCLE_SKIP_BROWSER=1`` skips."""
    if os.environ.get(SKIP_BROWSER_ENV) == "1":
        pytest.skip(f"{reason} ({SKIP_BROWSER_ENV}=1)")
    pytest.fail(f"{reason}; install it (`make test` does), or set {SKIP_BROWSER_ENV}=1 to skip "
                "the browser and map asset tests", pytrace=False)
