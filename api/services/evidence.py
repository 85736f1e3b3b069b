"""Keep the photos a team attaches to a request: checked, stripped of metadata, stored by hash.

An upload is a ``multipart/form-data`` body with one part named ``file``. Its bytes are counted
as they arrive (never more than ``photo_max_bytes`` of photo is read); its type is read from the
content, never from the name: only JPEG, PNG and WebP open. The image is decoded (its pixel
count checked first against ``photo_max_pixels``: a small file can unpack into a huge image),
turned upright by its EXIF orientation, converted to sRGB if it carries a colour profile, scaled
down to ``photo_max_edge_px`` and re-encoded, so the stored file holds pixels only: no EXIF (so
no GPS position, no camera serial), no XMP, no comment, no ICC profile. Re-encoding is
deterministic, so the same photo sent twice is one file and one row.

Files live at ``<evidence_dir>/ab/cdef….jpg`` (the SHA-256 of the stored bytes), written to a
temporary file, flushed to disk and renamed (new folders synced in their parents) before the
write transaction even begins, so a 201 is durable and no writer waits behind the disk.
Photos are served only to those who may see the request, by the same rule as the request
itself (:func:`api.services.requests_query.get_request`); to everyone else they do not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.domain import RequestState
from api.schemas.evidence import PhotoPublic, PhotoRef
from api.services.dispatch_errors import (
    DispatchError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
)
from api.services.leaders import acts_for_team
from api.storage.models import Evidence, ServiceRequest, User
from geo import District
from geo.district import ensure_private_dir

log = logging.getLogger("practice_circle")

#: Stored formats: Pillow's name → (content type, file extension). MPO is a JPEG with extra
#: frames (some phones write it); it is stored as a plain JPEG.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
_OPENERS = ("JPEG", "PNG", "WEBP")
_EXTENSIONS = {ct: ext for ct, ext in FORMATS.values()}
#: Bytes of multipart framing (boundaries, part headers, small fields) allowed beside the photo.
MULTIPART_SLACK = 64 * 1024
#: The route's own body cap (the app-wide cap is smaller): above the largest ``photo_max_bytes``
#: the settings allow, so the limit that applies is this module's, counted as bytes arrive.
BODY_CEILING = 50 * 1024 * 1024 + 2 * MULTIPART_SLACK
#: Quality of re-encoded JPEG and WebP photos.
QUALITY = 85
#: Uploaded parts are held in memory up to this size, then in a temporary file.
_SPOOL_BYTES = 1024 * 1024
#: Photos decoded at once: each may take a few hundred MB while it is decoded.
_DECODING = threading.BoundedSemaphore(2)
#: States in which the assigned team may attach photos.
ATTACHABLE = (RequestState.ACCEPTED, RequestState.COMPLETED)


class UnsupportedPhotoError(DispatchError):
    """The upload is not a JPEG, PNG or WebP image that decodes whole."""


class PhotoTooLargeError(DispatchError):
    """The upload has more bytes than ``photo_max_bytes`` or pixels than ``photo_max_pixels``."""


class TooManyPhotosError(DispatchError):
    """The request already carries ``photos_per_request`` photos."""


@dataclass(frozen=True)
class CleanPhoto:
    """A photo re-encoded without metadata, ready to store."""

    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the stored bytes."""
        return hashlib.sha256(self.data).hexdigest()


# --------------------------------------------------------------------------- who may do what


def _readable(session: Session, district: District, user: User, request_id: int) -> None:
    """Raise :class:`NotFoundError` unless the user may see the request.

    The rule is the request view's own, so a photo is visible exactly where its request is.
    """
    from api.services.requests_query import get_request  # it imports the view, which imports us

    get_request(session, district, user, request_id)


def _may_attach(session: Session, district: District, user: User, request_id: int,
                *, lock: bool = False) -> ServiceRequest:
    """Return the request if the user may attach photos to it now.

    The assigned team's account and the volunteers who lead that team may, while the request is
    accepted or completed.

    Raises
    ------
    NotFoundError
        If the user may not see the request (404, like any request id they may not see).
    ForbiddenError
        If they may see it but are not the assigned team or one of its leaders.
    InvalidTransitionError
        If the request is neither accepted nor completed (with ``state``).
    """
    from api.services.requests_query import visible

    req = visible(session, user, request_id, district, lock=lock)
    _readable(session, district, user, request_id)
    if req.team_id is None or not acts_for_team(session, user, req.team_id):
        msg = "只有接单的队伍（或其队长）可以上传照片"
        raise ForbiddenError(msg, role=user.role)
    if req.state not in ATTACHABLE:
        msg = f"服务请求{req.state.zh}，不能上传照片（须已接单或已完成）"
        raise InvalidTransitionError(msg, state=req.state.value)
    return req


# ------------------------------------------------------------------------- reading the body


async def receive_photo(
    content_type: str, content_length: int | None, chunks: AsyncIterator[bytes],
    *, max_bytes: int,
) -> IO[bytes]:
    """Read the ``file`` part of a multipart body into a spooled file, counting as it arrives.

    Raises
    ------
    PhotoTooLargeError
        As soon as the photo passes ``max_bytes`` (or the declared body leaves no doubt).
    RequestValidationError
        If the body is not multipart/form-data with a complete ``file`` part (422).
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        _no_file("须以 multipart/form-data 上传，照片放在字段 file 中")
    body_limit = max_bytes + MULTIPART_SLACK
    if content_length is not None and content_length > body_limit:
        _too_large(max_bytes)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
    try:
        state = _Parts(spool, max_bytes)
        parser = MultipartParser(boundary, state.callbacks())
        seen = 0
        async for chunk in chunks:
            seen += len(chunk)
            if seen > body_limit:
                _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
        if not (state.file_done and state.ended):
            _no_file("缺少完整的照片字段 file")
    except MultipartParseError as e:
        spool.close()
        _no_file(f"multipart 内容无法解析：{e}")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


class _Parts:
    """Callbacks of the multipart parser: keep the first part named ``file``, skip the rest."""

    def __init__(self, out: IO[bytes], max_bytes: int) -> None:
        self.out, self.max_bytes = out, max_bytes
        self.size = 0
        self.field = bytearray()
        self.value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.in_file = False
        self.file_done = False
        self.ended = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.begin, "on_header_field": self.header_field,
            "on_header_value": self.header_value, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.data,
            "on_part_end": self.part_end, "on_end": self.end,
        }

    def begin(self) -> None:
        self.headers, self.in_file = {}, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[bytes(self.field).lower()] = bytes(self.value)
        self.field.clear()
        self.value.clear()

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = options.get(b"name") == b"file" and not self.file_done

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.size += end - start
            if self.size > self.max_bytes:
                _too_large(self.max_bytes)
            self.out.write(data[start:end])

    def part_end(self) -> None:
        if self.in_file:
            self.file_done, self.in_file = True, False

    def end(self) -> None:
        self.ended = True


def _too_large(max_bytes: int) -> NoReturn:
    msg = f"照片超过 {max_bytes / 1024 / 1024:g} MB 的上限"
    raise PhotoTooLargeError(msg, max_bytes=max_bytes)


def _no_file(detail: str) -> NoReturn:
    raise RequestValidationError([{"loc": ("body", "file"), "msg": detail, "type": "missing"}])


# ------------------------------------------------------------------------- cleaning the image


def clean_photo(fp: IO[bytes], *, max_pixels: int, max_edge: int) -> CleanPhoto:
    """Decode a JPEG, PNG or WebP and re-encode it upright, in sRGB and without metadata.

    Raises
    ------
    UnsupportedPhotoError
        If it is none of those formats, or does not decode whole (truncated, corrupt).
    PhotoTooLargeError
        If it has more than ``max_pixels`` pixels (read from its header, before decoding).
    """
    with _DECODING:
        try:
            with Image.open(fp, formats=_OPENERS) as im:
                content_type = FORMATS[str(im.format)][0]
                if im.width * im.height > max_pixels:
                    _too_many_pixels(im.width, im.height, max_pixels)
                if im.format in ("JPEG", "MPO"):
                    im.draft(None, (max_edge, max_edge))  # decode at 1/2..1/8 scale if larger
                im.load()
                out = _upright_srgb(im, content_type)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            # Pillow's own guard (Image.MAX_IMAGE_PIXELS), past ours only if set above it.
            msg = f"照片像素过多：{e}"
            raise PhotoTooLargeError(msg, max_pixels=max_pixels) from e
        except UnidentifiedImageError as e:
            msg = "只接受 JPEG、PNG 或 WebP 格式的照片"
            raise UnsupportedPhotoError(msg) from e
        except (OSError, SyntaxError, ValueError) as e:
            msg = f"照片已损坏或不完整，无法读取：{e}"
            raise UnsupportedPhotoError(msg) from e
        out.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
        data = _encode(out, content_type)
    _check_clean(data)
    return CleanPhoto(data, content_type, out.width, out.height)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> NoReturn:
    msg = f"照片 {width}×{height} 像素，超过 {max_pixels:,} 像素的上限"
    raise PhotoTooLargeError(msg, max_pixels=max_pixels)


def _upright_srgb(im: Image.Image, content_type: str) -> Image.Image:
    """Return the pixels turned upright, in sRGB, in a mode the stored format holds; no info."""
    icc = im.info.get("icc_profile")
    upright = ImageOps.exif_transpose(im)  # a new image: the original's info does not follow
    alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info)
    keep = ("L", "RGB") if content_type == "image/jpeg" else ("L", "LA", "RGB", "RGBA")
    if content_type == "image/webp":
        keep = ("RGB", "RGBA")
    if upright.mode not in keep:
        target = "RGBA" if alpha and "RGBA" in keep else "RGB"
        upright = upright.convert(target)
    if icc and upright.mode in ("RGB", "RGBA"):
        with contextlib.suppress(ImageCms.PyCMSError, OSError):
            converted = ImageCms.profileToProfile(
                upright, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"), outputMode=upright.mode)
            if converted is not None:
                upright = converted
    upright.info = {}  # nothing of the upload's metadata may reach the encoder
    return upright


def _encode(im: Image.Image, content_type: str) -> bytes:
    buf = io.BytesIO()
    if content_type == "image/jpeg":
        im.save(buf, "JPEG", quality=QUALITY)
    elif content_type == "image/png":
        im.save(buf, "PNG")
    else:
        im.save(buf, "WEBP", quality=QUALITY, method=4)
    return buf.getvalue()


def _check_clean(data: bytes) -> None:
    """Refuse to store a re-encoded photo that still carries any metadata (a bug, not input)."""
    with Image.open(io.BytesIO(data)) as im:
        left = {k for k in ("exif", "xmp", "icc_profile", "comment") if im.info.get(k)}
        if left or len(im.getexif()):
            msg = f"re-encoded photo still carries metadata: {sorted(left) or 'exif'}"
            raise RuntimeError(msg)


# ----------------------------------------------------------------------------- storing it


def photo_path(root: Path, sha256: str, content_type: str) -> Path:
    """Return where a photo is kept: ``root/ab/cdef….ext`` for the hash ``abcdef…``."""
    return root / sha256[:2] / f"{sha256[2:]}.{_EXTENSIONS[content_type]}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file whole or not at all, and durably: temporary file, fsync, rename, fsync.

    Every folder on the way that did not exist is made durable in its parent, and the file's
    folder is synced after the rename, so once this returns the file survives a power loss.
    A file already there is the same content (its name is its hash): it is not written again,
    but its folders are synced all the same, as another writer may not have done so yet.
    """
    _durable_dir(path.parent.parent)
    _durable_dir(path.parent)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    _fsync_dir(path.parent)  # the rename itself survives a crash
    _fsync_dir(path.parent.parent)  # and so does the ab/ entry, made now or by another writer


def _durable_dir(path: Path) -> None:
    """Make a private folder unless it exists; a new one's entry is synced in its parent."""
    if path.is_dir():
        return
    ensure_private_dir(path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    folder = os.open(path, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def photo_url(district: str, request_id: int, sha256: str) -> str:
    """Return the URL a photo is served at (the district named, so it works from any page)."""
    return f"/requests/{request_id}/photos/{sha256}?district={quote(district)}"


def _public(row: Evidence, district: str) -> PhotoPublic:
    return PhotoPublic(sha256=row.sha256, url=photo_url(district, row.request_id, row.sha256),
                       content_type=row.content_type, width=row.width, height=row.height,
                       bytes=row.bytes)


def attach(
    session: Session, district: District, user: User, request_id: int, photo: CleanPhoto,
    *, root: Path, limit: int,
) -> tuple[dict[str, Any], bool]:
    """Store a cleaned photo for a request; return it and whether it is new.

    The file is written and flushed to disk first, before the session is used, so no lock is
    held (SQLite: no ``BEGIN IMMEDIATE``; PostgreSQL: no row lock) while the disk works. It is
    named by its hash, so a copy whose row is never written (refused below, or a failed commit)
    is harmless, and one photo stored twice at once is one file. Then the request is locked and
    the rights, state and count checked again (all may have moved while the photo came in),
    and the row committed: a 201 is durable.

    Raises
    ------
    TooManyPhotosError
        If the request already has ``limit`` photos and this is not one of them.
    """
    sha = photo.sha256
    write_atomically(photo_path(root, sha, photo.content_type), photo.data)
    req = _may_attach(session, district, user, request_id, lock=True)
    row = session.scalar(select(Evidence).where(Evidence.request_id == req.id,
                                                Evidence.sha256 == sha))
    if row is not None:
        return _public(row, req.district).model_dump(mode="json"), False
    count = session.scalar(select(func.count()).select_from(Evidence)
                           .where(Evidence.request_id == req.id)) or 0
    if count >= limit:
        msg = f"每个服务请求最多 {limit} 张照片"
        raise TooManyPhotosError(msg, limit=limit)
    row = Evidence(request_id=req.id, sha256=sha, content_type=photo.content_type,
                   bytes=len(photo.data), width=photo.width, height=photo.height,
                   uploaded_by=user.id)
    session.add(row)
    session.commit()
    return _public(row, req.district).model_dump(mode="json"), True


async def upload(
    *, read_session: Session, write_session: Session, district: District, user: User,
    request_id: int, content_type: str, content_length: int | None,
    chunks: AsyncIterator[bytes], root: Path, max_bytes: int, max_pixels: int, max_edge: int,
    limit: int, run: Callable[..., Any],
) -> tuple[dict[str, Any], bool]:
    """Check the caller, read the photo as it streams in, clean it, store it.

    ``run`` runs blocking work off the event loop (``run_in_threadpool``). The read session's
    transaction ends before the body is read: a slow phone holds no database connection; the
    file is on disk before the write session takes its lock, which it holds only to check again
    and insert the row.
    """
    try:
        await run(_may_attach, read_session, district, user, request_id)
    finally:
        await run(read_session.close)
    spool = await receive_photo(content_type, content_length, chunks, max_bytes=max_bytes)
    try:
        photo: CleanPhoto = await run(clean_photo, spool, max_pixels=max_pixels,
                                      max_edge=max_edge)
    finally:
        spool.close()
    result: tuple[dict[str, Any], bool] = await run(
        attach, write_session, district, user, request_id, photo, root=root, limit=limit)
    return result


# ----------------------------------------------------------------------------- reading them


@dataclass(frozen=True)
class StoredPhoto:
    """A photo on disk and how to serve it."""

    path: Path
    content_type: str
    sha256: str


def find_photo(
    session: Session, district: District, user: User, request_id: int, sha256: str,
    *, root: Path,
) -> StoredPhoto:
    """Return a request's photo if the user may see the request.

    Raises
    ------
    NotFoundError
        If the user may not see the request, it has no such photo, or its file is gone.
    """
    _readable(session, district, user, request_id)
    row = session.scalar(select(Evidence).where(Evidence.request_id == request_id,
                                                Evidence.sha256 == sha256))
    missing = "没有这张照片"
    if row is None:
        raise NotFoundError(missing, request_id=request_id)
    path = photo_path(root, row.sha256, row.content_type)
    if not path.is_file():
        log.error("evidence photo %s of request %s is missing from %s", sha256, request_id, path)
        raise NotFoundError(missing, request_id=request_id)
    return StoredPhoto(path, row.content_type, row.sha256)


def photos_of(session: Session, reqs: Sequence[ServiceRequest]) -> dict[int, list[PhotoRef]]:
    """Return the photos of several requests at once, oldest first, by request id."""
    out: dict[int, list[PhotoRef]] = {r.id: [] for r in reqs}
    if not out:
        return out
    districts = {r.id: r.district for r in reqs}
    for row in session.scalars(select(Evidence).where(Evidence.request_id.in_(list(out)))
                               .order_by(Evidence.id)):
        out[row.request_id].append(PhotoRef(
            sha256=row.sha256, url=photo_url(districts[row.request_id], row.request_id,
                                             row.sha256),
            content_type=row.content_type, width=row.width, height=row.height))
    return out


def file_name(photo: StoredPhoto) -> str:
    """Return the name a served photo is given (its hash and extension)."""
    return f"{photo.sha256}.{_EXTENSIONS[photo.content_type]}"
