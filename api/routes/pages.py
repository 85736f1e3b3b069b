"""Serve the phone pages (``/m/``) and the dispatcher's workbench (``/desk/``)."""

from __future__ import annotations

import hashlib
import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import web
from api.errors import ApiError

router = APIRouter(tags=["pages"])
router.mount("/assets/web", StaticFiles(directory=web.STATIC_DIR, check_dir=False),
             name="assets-web")

_ASSET = re.compile(r'(?P<attr>src|href)="(?P<path>\.\./assets/web/[^"?]+)"')


def _versioned(html: str) -> str:
    """Stamp every ``../assets/web/...`` reference with a content hash (no stale scripts)."""

    def stamp(m: re.Match[str]) -> str:
        file = web.STATIC_DIR / m["path"].removeprefix("../assets/web/")
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:10] if file.is_file() else "0"
        return f'{m["attr"]}="{m["path"]}?v={digest}"'

    return _ASSET.sub(stamp, html)


def _app_page(request: Request, app: str) -> Response:
    page = web.STATIC_DIR / web.APPS[app] / "index.html"
    if not page.is_file():
        raise ApiError(503, "page_missing", "页面文件缺失", f"{page} is missing")
    body = _versioned(page.read_text(encoding="utf-8")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


@router.get("/m", include_in_schema=False)
@router.get("/desk", include_in_schema=False)
def add_slash(request: Request) -> RedirectResponse:
    """Send ``/m`` and ``/desk`` to their folder URL so relative links resolve."""
    return RedirectResponse(request.url.path + "/", status_code=308)


@router.get("/m/", response_class=HTMLResponse, summary="The phone pages (residents, volunteers)")
def phone_pages(request: Request) -> Response:
    """Serve the phone pages: one HTML file; the script routes by ``#`` fragment."""
    return _app_page(request, "m")


@router.get("/m/checkin", response_class=HTMLResponse,
            summary="The phone pages opened from an activity's check-in QR")
def phone_checkin(request: Request) -> Response:
    """Serve the phone pages for the QR link ``/m/checkin?activity=&code=``; they check in."""
    return _app_page(request, "m")


@router.get("/desk/", response_class=HTMLResponse, summary="The dispatcher's workbench")
def workbench(request: Request) -> Response:
    """Serve the dispatcher's workbench page."""
    return _app_page(request, "desk")
