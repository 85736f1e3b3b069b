"""Evidence photos of a service request: the assigned team uploads, those who may see it read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from api.deps import DistrictDep, ReaderDep, ReadSessionDep, SessionDep, SettingsDep
from api.routes.requests import RequestId
from api.schemas.evidence import PhotoLimits, PhotoPublic
from api.services import evidence

router = APIRouter(prefix="/requests", tags=["requests"])

Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The photo's SHA-256 (hex)")]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/problem+json": {}}}
    for status, text in (
        (401, "No or invalid bearer token (unauthorized)"),
        (403, "Not the assigned team or one of its leaders (forbidden)"),
        (404, "No such request, or one the caller may not see (not_found)"),
        (409, "Not accepted or completed (invalid_transition), or full (too_many_photos)"),
        (413, "More bytes or pixels than allowed (photo_too_large)"),
        (415, "Not a whole JPEG, PNG or WebP image (unsupported_photo)"),
        (422, "No complete multipart part named `file` (invalid_request)"),
    )
}
_READ_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _PROBLEMS[401],
    404: _PROBLEMS[404],
    422: {"description": "Not a SHA-256 in hex (invalid_request)",
          "content": {"application/problem+json": {}}},
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "A JPEG, PNG or WebP photo"}},
        }}},
    },
}


@router.get("/photos/limits", response_model=PhotoLimits)
def photo_limits(settings: SettingsDep) -> PhotoLimits:
    """Tell what a photo upload may be (public): pages scale photos down to fit first."""
    return PhotoLimits(photo_max_bytes=settings.photo_max_bytes,
                       photo_max_pixels=settings.photo_max_pixels,
                       photo_max_edge_px=settings.photo_max_edge_px,
                       photos_per_request=settings.photos_per_request)


@router.post(
    "/{request_id}/photos", status_code=201, response_model=PhotoPublic,
    responses={200: {"description": "The same photo was already attached", "model": PhotoPublic},
               **_PROBLEMS},
    openapi_extra=_UPLOAD_BODY, max_body_size=evidence.BODY_CEILING,
)
async def upload_photo(
    request_id: RequestId,
    request: Request,
    district: DistrictDep,
    settings: SettingsDep,
    read_session: ReadSessionDep,
    session: SessionDep,
    user: ReaderDep,
) -> JSONResponse:
    """Attach a photo (完成凭证): the assigned team or its leader, once accepted.

    The photo is stored without EXIF (no location), upright, by the SHA-256 of the stored
    file; sending the same photo again answers 200 with the same photo.
    """
    length = request.headers.get("content-length")
    body, created = await evidence.upload(
        read_session=read_session, write_session=session, district=district, user=user,
        request_id=request_id, content_type=request.headers.get("content-type", ""),
        content_length=int(length) if length and length.isdigit() else None,
        chunks=request.stream(), root=settings.resolved_evidence_dir,
        max_bytes=settings.photo_max_bytes, max_pixels=settings.photo_max_pixels,
        max_edge=settings.photo_max_edge_px, limit=settings.photos_per_request,
        run=run_in_threadpool,
    )
    return JSONResponse(body, status_code=201 if created else 200,
                        headers={"Location": body["url"]} if created else None)


@router.get(
    "/{request_id}/photos/{sha256}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
                     "description": "The photo, without metadata"}, **_READ_PROBLEMS},
)
def get_photo(
    request_id: RequestId,
    sha256: Sha256,
    district: DistrictDep,
    settings: SettingsDep,
    session: ReadSessionDep,
    user: ReaderDep,
) -> FileResponse:
    """Fetch a photo of a request the caller may see (everyone else: 404)."""
    photo = evidence.find_photo(session, district, user, request_id, sha256,
                                root=settings.resolved_evidence_dir)
    return FileResponse(
        photo.path, media_type=photo.content_type, filename=evidence.file_name(photo),
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
