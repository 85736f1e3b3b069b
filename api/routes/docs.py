"""The API docs, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from local files (no CDN).

Their scripts come from the npm packages ``swagger-ui-dist`` and ``redoc`` (served under
``/assets/``, see :mod:`maps.assets`); every URL is relative to the page, so the docs work
offline and under a path prefix. Swagger UI's online validator and ReDoc's Google fonts are off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from maps import assets

router = APIRouter(include_in_schema=False)
_FILES = {use: assets.asset_url(pkg, file) for use, pkg, file in assets.DOCS}


def _openapi_url(request: Request) -> str:
    return str(request.app.openapi_url).lstrip("/")


def _check_assets() -> None:
    missing = assets.missing_assets(assets.DOCS)
    if missing:
        raise ApiError(503, "docs_assets_missing", "接口文档脚本未安装",
                       f"{len(missing)} asset files are missing (first: {missing[0]}); "
                       "run `npm ci` at the repository root")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI document."""
    _check_assets()
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} · 接口文档",
        swagger_js_url=_FILES["swagger_js"],
        swagger_css_url=_FILES["swagger_css"],
        swagger_favicon_url=_FILES["favicon"],
        swagger_ui_parameters={"validatorUrl": None},  # no calls to validator.swagger.io
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI document."""
    _check_assets()
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} · 接口文档",
        redoc_js_url=_FILES["redoc_js"],
        redoc_favicon_url=_FILES["favicon"],
        with_google_fonts=False,
    )
