"""Say where the map's (and the API docs') JavaScript and CSS live: node_modules, maps/static.

Nothing is loaded from a CDN. ``npm ci`` at the repository root installs the packages pinned in
``package.json``/``package-lock.json``; the API serves each package's ``dist`` folder under
``/assets/<package>/`` and :data:`STATIC_DIR` under ``/assets/app/``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: URL path (relative to the site root) under which every asset is served.
ASSETS_PATH = "assets"


def node_modules_dir() -> Path:
    """Return the ``node_modules`` folder (``$PRACTICE_CIRCLE_NODE_MODULES`` or the repo's)."""
    env = os.environ.get("PRACTICE_CIRCLE_NODE_MODULES")
    return Path(env) if env else REPO_ROOT / "node_modules"


@dataclass(frozen=True)
class Package:
    """An npm package whose ``dist`` folder the map serves."""

    name: str
    dist: str = "dist"

    @property
    def directory(self) -> Path:
        """Folder served under ``/assets/<name>/``."""
        return node_modules_dir() / self.name / self.dist


#: The npm packages served, in package.json.
PACKAGES: tuple[Package, ...] = (
    Package("leaflet"),
    Package("leaflet.markercluster"),
    Package("jquery"),
    # The phone pages' QR scanner (check-in at an activity).
    Package("jsqr"),
    # The API docs (/docs, /redoc); swagger-ui-dist keeps its files at the package root.
    Package("swagger-ui-dist", dist=""),
    Package("redoc", dist="bundles"),
)


def mounts() -> dict[str, Path]:
    """Return URL prefix (``/assets/...``) → folder for every served asset folder."""
    out = {f"/{ASSETS_PATH}/{p.name}": p.directory for p in PACKAGES}
    out[f"/{ASSETS_PATH}/app"] = STATIC_DIR
    return out


def asset_url(package: str, file: str) -> str:
    """Return the page-relative URL of an asset file (no leading slash, works under a prefix).

    The map's own files carry a content hash (``?v=…``) so browsers never run a stale copy.
    """
    url = f"{ASSETS_PATH}/{package}/{file}"
    if package == "app":
        path = STATIC_DIR / file
        if path.is_file():
            url += "?v=" + hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return url


#: Scripts in load order: (folium resource name, package, file).
JS: tuple[tuple[str, str, str], ...] = (
    ("leaflet", "leaflet", "leaflet.js"),
    ("jquery", "jquery", "jquery.min.js"),
    ("markercluster", "leaflet.markercluster", "leaflet.markercluster.js"),
    ("practice_map", "app", "practice-map.js"),
)
CSS: tuple[tuple[str, str, str], ...] = (
    ("leaflet_css", "leaflet", "leaflet.css"),
    ("markercluster_css", "leaflet.markercluster", "MarkerCluster.css"),
    ("practice_map_css", "app", "practice-map.css"),
)
#: Only Leaflet and jQuery: what a plain folium page needs (the benchmark baseline).
BASE_JS: tuple[tuple[str, str, str], ...] = JS[:2]
BASE_CSS: tuple[tuple[str, str, str], ...] = CSS[:1]


#: Files of the API docs pages: (use, package, file).
DOCS: tuple[tuple[str, str, str], ...] = (
    ("swagger_js", "swagger-ui-dist", "swagger-ui-bundle.js"),
    ("swagger_css", "swagger-ui-dist", "swagger-ui.css"),
    ("favicon", "swagger-ui-dist", "favicon-32x32.png"),
    ("redoc_js", "redoc", "redoc.standalone.js"),
)


def missing_assets(files: tuple[tuple[str, str, str], ...] = (*JS, *CSS)) -> list[Path]:
    """Return the asset files that are not on disk (empty when ``npm ci`` has run).

    ``files`` are (use, package, file) rows: the map's scripts and styles unless given.
    """
    paths = [mounts()[f"/{ASSETS_PATH}/{pkg}"] / f for _, pkg, f in files]
    return [f for f in paths if not f.is_file()]
