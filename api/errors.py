"""Map domain errors to RFC 9457 ``application/problem+json`` answers, registered once."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.services.dispatch_errors import (
    ForbiddenError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NoEligibleTeamError,
    NotFoundError,
    TeamUnavailableError,
    UnauthorizedError,
)
from api.services.sites import InvalidLevelError
from geo import OSMDataError, OutOfAreaError, UnknownCategoryError, UnknownDistrictError
from geo._errors import DemandFileError, SitingError, UnknownProfileError

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error with a stable code, an HTTP status and a zh-CN title."""

    def __init__(self, status: int, code: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.extra = (
            status,
            code,
            title,
            detail,
            extra,
        )


#: Domain exception → (status, stable code, zh-CN title).
ERROR_TABLE: dict[type[Exception], tuple[int, str, str]] = {
    UnknownDistrictError: (404, "unknown_district", "未知的区县"),
    UnknownCategoryError: (422, "unknown_category", "未知的服务类别"),
    OutOfAreaError: (422, "out_of_area", "位置不在服务区域内"),
    OSMDataError: (422, "bad_osm_data", "OSM 数据无法使用"),
    UnknownProfileError: (422, "unknown_profile", "未知的步行类型"),
    InvalidLevelError: (422, "unknown_level", "未知的阵地层级"),
    SitingError: (422, "bad_siting_request", "选址请求无法满足"),
    DemandFileError: (422, "bad_demand_file", "人口数据文件无法使用"),
    # Dispatch (api/services/dispatch_errors.py); their ``extra`` joins the problem body.
    UnauthorizedError: (401, "unauthorized", "未认证"),
    ForbiddenError: (403, "forbidden", "无权执行此操作"),
    NotFoundError: (404, "not_found", "资源不存在"),
    InvalidTransitionError: (409, "invalid_transition", "当前状态不允许此操作"),
    TeamUnavailableError: (409, "team_unavailable", "队伍无法接单"),
    NoEligibleTeamError: (409, "no_eligible_team", "没有可派单的队伍"),
    IdempotencyConflictError: (422, "idempotency_conflict", "幂等键冲突"),
}


def problem(
    status: int, code: str, title: str, detail: str, request: Request, **extra: Any
) -> JSONResponse:
    """Build a problem+json response."""
    body = {
        "type": f"https://practice-circle.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": str(request.url.path),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def register_error_handlers(app: FastAPI) -> None:
    """Register the one table of error handlers on an app."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem(exc.status, exc.code, exc.title, exc.detail, request, **exc.extra)

    app.add_exception_handler(ApiError, on_api_error)

    for exc_type, (status, code, title) in ERROR_TABLE.items():

        async def on_domain(
            request: Request,
            exc: Exception,
            status: int = status,
            code: str = code,
            title: str = title,
        ) -> JSONResponse:
            response = problem(
                status, code, title, str(exc).strip("'\""), request,
                **getattr(exc, "extra", {}),
            )
            response.headers.update(getattr(exc, "headers", {}))
            return response

        app.add_exception_handler(exc_type, on_domain)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, "invalid_request", "请求参数有误", detail, request, errors=errors)

    app.add_exception_handler(RequestValidationError, on_validation)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        code = phrase.lower().replace(" ", "_")
        return problem(exc.status_code, code, phrase, str(exc.detail), request)

    app.add_exception_handler(StarletteHTTPException, on_http)
