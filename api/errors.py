"""Map domain errors to RFC 9457 ``application/problem+json`` answers, registered once."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.services.activities import ActivityClosedError, InvalidActivityError
from api.services.attendance import (
    AttendanceStateError,
    BadCodeError,
    NotSignedUpError,
    OutsideWindowError,
    TooFarError,
)
from api.services.dispatch import MergeTargetError
from api.services.dispatch_errors import (
    ForbiddenError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NoEligibleTeamError,
    NotFoundError,
    TeamUnavailableError,
    UnauthorizedError,
)
from api.services.evidence import PhotoTooLargeError, TooManyPhotosError, UnsupportedPhotoError
from api.services.ledger import EntryDecidedError
from api.services.registry import PreconditionFailedError, RegistryEntryError
from api.services.signin import (
    AccountRevokedError,
    BadSignInCodeError,
    CodeQuotaError,
    CodeTooSoonError,
    InvalidPhoneError,
    NotStaffError,
    SignInLockedError,
    SmsUnavailableError,
)
from api.services.sites import InvalidLevelError
from api.services.store import (
    CodeUsedError,
    InsufficientPointsError,
    InvalidRewardError,
    OutOfStockError,
)
from api.services.volunteers import (
    AlreadyRegisteredError,
    InvalidVolunteerError,
    PhoneRegisteredError,
)
from api.storage.health import storage_state
from api.workload import BusyError, ClientGoneError, OverBudgetError
from geo import OSMDataError, OutOfAreaError, UnknownCategoryError, UnknownDistrictError
from geo._errors import (
    AmbiguousDistrictError,
    DemandFileError,
    OutlineError,
    SitingError,
    UnknownProfileError,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("practice_circle")
#: Seconds a client should wait before retrying when storage is unavailable.
STORAGE_RETRY_AFTER_S = 5


class PreconditionRequiredError(Exception):
    """A change sent without ``If-Match``: the client must say which version it edits."""


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
    AmbiguousDistrictError: (422, "ambiguous_district", "区县名称不唯一，请注明所属城市或区划代码"),
    OutlineError: (422, "bad_outline", "区县边界无法使用"),
    # Dispatch (api/services/dispatch_errors.py); their ``extra`` joins the problem body.
    UnauthorizedError: (401, "unauthorized", "未认证"),
    ForbiddenError: (403, "forbidden", "无权执行此操作"),
    NotFoundError: (404, "not_found", "资源不存在"),
    InvalidTransitionError: (409, "invalid_transition", "当前状态不允许此操作"),
    TeamUnavailableError: (409, "team_unavailable", "队伍无法接单"),
    NoEligibleTeamError: (409, "no_eligible_team", "没有可派单的队伍"),
    IdempotencyConflictError: (422, "idempotency_conflict", "幂等键冲突"),
    MergeTargetError: (422, "bad_merge_target", "无法合并到该服务单"),
    # The registry (api/services/registry.py).
    RegistryEntryError: (422, "invalid_registry_entry", "阵地或队伍信息有误"),
    PreconditionFailedError: (412, "precondition_failed", "记录已被他人修改"),
    PreconditionRequiredError: (428, "precondition_required", "缺少 If-Match 条件"),
    # Volunteers and activities (api/services/volunteers.py, activities.py).
    InvalidVolunteerError: (422, "invalid_volunteer", "志愿者信息有误"),
    AlreadyRegisteredError: (409, "already_registered", "该手机号已注册"),
    PhoneRegisteredError: (409, "phone_registered", "该手机号已注册，请登录后再申请成为志愿者"),
    InvalidActivityError: (422, "invalid_activity", "活动信息有误"),
    ActivityClosedError: (409, "activity_closed", "活动已结束或已取消"),
    BadCodeError: (422, "bad_code", "签到码无效"),
    OutsideWindowError: (409, "outside_window", "不在签到时间内"),
    TooFarError: (422, "too_far", "离活动地点太远"),
    NotSignedUpError: (403, "not_signed_up", "未报名该活动"),
    AttendanceStateError: (409, "attendance_state", "签到状态不允许此操作"),
    EntryDecidedError: (409, "entry_decided", "时长记录已审核"),
    InvalidRewardError: (422, "invalid_reward", "奖品信息有误"),
    InsufficientPointsError: (409, "insufficient_points", "积分不足"),
    OutOfStockError: (409, "out_of_stock", "奖品已兑完"),
    CodeUsedError: (409, "code_used", "兑换码已核销"),
    # Evidence photos (api/services/evidence.py).
    UnsupportedPhotoError: (415, "unsupported_photo", "照片格式不支持"),
    PhotoTooLargeError: (413, "photo_too_large", "照片过大"),
    TooManyPhotosError: (409, "too_many_photos", "照片数量已达上限"),
    # Phone sign-in (api/services/signin.py).
    InvalidPhoneError: (422, "invalid_phone", "手机号码有误"),
    CodeTooSoonError: (429, "code_too_soon", "验证码发送过于频繁"),
    BadSignInCodeError: (401, "bad_code", "验证码错误或已失效"),
    CodeQuotaError: (429, "code_quota", "今日验证码次数已用完"),
    SignInLockedError: (429, "signin_locked", "验证码错误次数过多，已暂停登录"),
    SmsUnavailableError: (503, "sms_unavailable", "短信服务未配置"),
    NotStaffError: (403, "not_staff", "该账号不能使用派单工作台"),
    AccountRevokedError: (403, "account_revoked", "账户已被停用"),
    # Bounded work (api/workload.py): answered at once, with Retry-After.
    BusyError: (503, "busy", "服务繁忙，请稍后再试"),
    OverBudgetError: (503, "over_budget", "计算超时，请稍后再试"),
}

#: Storage faults (disk full, read-only or locked database, lost connection): 503, never a crash.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeoutError)


def user_errors() -> tuple[type[Exception], ...]:
    """Return the exceptions a user causes (4xx in :data:`ERROR_TABLE`): CLI exit code 2."""
    return tuple(exc for exc, (status, _, _) in ERROR_TABLE.items() if 400 <= status < 500)


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
        response = problem(exc.status_code, code, phrase, str(exc.detail), request)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    app.add_exception_handler(StarletteHTTPException, on_http)

    async def on_storage(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        storage_state.failed(exc)
        log.error("storage unavailable (request %s %s %s): %s", request_id, request.method,
                  request.url.path, exc)
        response = problem(503, "storage_unavailable", "数据存储暂不可用",
                           "数据库暂时无法读写，请稍后重试；已记录此问题", request,
                           trace_id=request_id)
        response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
        response.headers["X-Request-ID"] = request_id
        return response

    for exc_type in STORAGE_ERRORS:
        app.add_exception_handler(exc_type, on_storage)

    async def on_client_gone(request: Request, exc: Exception) -> JSONResponse:
        # Nobody reads this answer; it only ends the request in the access log.
        return problem(499, "client_closed_request", "客户端已断开", "", request)

    app.add_exception_handler(ClientGoneError, on_client_gone)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.error("unexpected error (request %s %s %s)", request_id, request.method,
                  request.url.path, exc_info=exc)
        response = problem(500, "internal_error", "服务器内部错误",
                           f"服务器出现意外错误，请稍后重试；如需报告，请提供编号 {request_id}",
                           request, trace_id=request_id)
        response.headers["X-Request-ID"] = request_id
        # Starlette answers this outside the app's middleware: add the security headers here.
        from api.middleware import SECURITY_HEADERS

        response.headers.update(SECURITY_HEADERS)
        return response

    app.add_exception_handler(Exception, on_unexpected)


#: The RFC 9457 problem document every error answer is, as an OpenAPI schema.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string", "description": "zh-CN"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable code"},
        "instance": {"type": "string"},
        "trace_id": {"type": "string", "description": "Quote it when reporting a 5xx"},
    },
    "additionalProperties": True,
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Say in an OpenAPI document that every error is ``application/problem+json``.

    FastAPI documents its 422 as ``{"detail": [...]}`` JSON; this app answers every error,
    422 included, with a problem document, so clients (and the contract fuzzing) read that.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    problem_content = {PROBLEM_JSON: {"schema": ref}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, answer in responses.items():
                if status[:1] in "45":
                    answer["content"] = problem_content
            responses.setdefault(
                "default", {"description": "Error (problem+json)", "content": problem_content}
            )
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema
