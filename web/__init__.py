"""The phone pages (``/m/``) and the dispatcher's workbench (``/desk/``): static HTML, CSS, JS.

No build step: plain files served by the API (:mod:`api.routes.pages`), talking to it with
relative URLs, so they work offline and under a path prefix.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The single-page apps: URL folder → folder under :data:`STATIC_DIR` holding ``index.html``.
APPS: dict[str, str] = {"m": "m", "desk": "desk"}
