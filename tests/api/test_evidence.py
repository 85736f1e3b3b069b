"""Evidence photos: checked, stripped of EXIF, stored by hash, served only where the request is.

Runs the real app on SQLite + SpatiaLite and on PostgreSQL + PostGIS (the throwaway cluster of
``scripts/postgres.sh``, a database of this module's own), with real images made by Pillow.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, ImageCms
from sqlalchemy import delete, func, select

import geo
from api.services.accounts import create_user
from api.settings import Settings
from api.storage.models import Evidence, Position, ServiceRequest, TeamMember, Volunteer
from api.storage.seed import prepare_database
from api.storage.session import get_engine, session_maker
from tests.api.dispatch.helpers import (
    Actors,
    Server,
    drop_postgres_database,
    new_request,
    postgres_script,
    reset,
)

PROBLEM = "application/problem+json"
#: A position in Taiyuan, as a camera's GPS writes it (degrees, minutes, seconds).
GPS_LAT = (37.0, 48.0, 8.64)
GPS_LON = (112.0, 33.0, 0.36)


# ------------------------------------------------------------------------------ images


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: orientation, camera, and where the photo was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0042"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LAT
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = GPS_LON
    return exif


def two_halves(size: tuple[int, int] = (96, 48)) -> Image.Image:
    """Red on the left half, blue on the right: which way is up can be read back."""
    im = Image.new("RGB", size, (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return im


def sideways_jpeg_with_gps() -> bytes:
    """A JPEG stored sideways (EXIF orientation 6: turn 90° clockwise to view), GPS tagged.

    It also carries XMP, a comment and an ICC profile, all of which must go.
    """
    buf = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    two_halves().save(buf, "JPEG", quality=95, exif=exif_with_gps(orientation=6),
                      comment=b"taken at home", icc_profile=icc,
                      xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS 37.8</x:xmpmeta>')
    return buf.getvalue()


def encoded(fmt: str, im: Image.Image | None = None, **params: Any) -> bytes:
    buf = io.BytesIO()
    (im or two_halves()).save(buf, fmt, **params)
    return buf.getvalue()


def noise_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    return encoded("JPEG", Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels (a decompression bomb)."""
    data = bytearray(encoded("PNG", Image.new("L", (8, 8))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def metadata_left(im: Image.Image) -> dict[str, Any]:
    """Everything a stored photo must not carry."""
    left: dict[str, Any] = {k: v for k, v in im.info.items()
                            if k in ("exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp")}
    exif = im.getexif()
    if len(exif):
        left["exif_tags"] = dict(exif)
    if exif.get_ifd(ExifTags.IFD.GPSInfo):
        left["gps"] = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if getattr(im, "text", None):
        left["text"] = im.text  # type: ignore[attr-defined]
    return left


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    district: geo.District,
) -> Iterator[str]:
    """A migrated and seeded database of each backend, for this module alone."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('evidence-db') / 'practice.db'}"
        prepare_database(url, district)
        yield url
        return
    if os.environ.get("PRACTICE_CIRCLE_SKIP_POSTGIS") == "1":
        pytest.skip("PRACTICE_CIRCLE_SKIP_POSTGIS=1")
    was_running = postgres_script("status").returncode == 0
    res = postgres_script("start", f"pc_evidence_{os.getpid()}")
    if res.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed ({res.returncode}):\n{res.stderr}")
    url = res.stdout.strip().splitlines()[-1]
    prepare_database(url, district)
    yield url
    get_engine(url).dispose()
    drop_postgres_database(url)
    if not was_running:
        postgres_script("stop")


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Settings:
    """The app's settings (photos in a folder of this module's own); tests may change them."""
    return Settings(database_url=db_url, cache=cache_dir,
                    evidence_dir=str(tmp_path_factory.mktemp("evidence")))


@pytest.fixture(scope="module")
def client(settings: Settings, db_url: str) -> Iterator[TestClient]:
    """The real app (lifespan and middleware included), rate limits off."""
    from api.deps import settings_dep
    from api.main import create_app
    from api.settings import get_settings

    env = {"PRACTICE_CIRCLE_DATABASE_URL": db_url, "PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false",
           "PRACTICE_CIRCLE_EVIDENCE_DIR": settings.evidence_dir,
           "PRACTICE_CIRCLE_ESCALATION_POLL_S": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        app = create_app()
        app.dependency_overrides[settings_dep] = lambda: settings
        test_client = TestClient(app)
        test_client.__enter__()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    yield test_client
    test_client.__exit__(None, None, None)


@dataclass
class Cast:
    """Everyone the access rules tell apart, made once per backend."""

    resident: dict[str, str]
    other_resident: dict[str, str]
    dispatcher: dict[str, str]
    team_id: str
    team: dict[str, str]
    other_team: dict[str, str]
    leader: dict[str, str]
    member: dict[str, str]


def volunteer(url: str, district: geo.District, team_id: str, *, leader: bool, n: int
              ) -> dict[str, str]:
    """A registered volunteer in ``team_id`` (its leader or a plain member)."""
    with session_maker(url)() as s:
        user, token = create_user(s, role="volunteer", name=f"志愿者{n}")
        s.flush()
        v = Volunteer(user_id=user.id, district=district.name, name=f"志愿者{n}",
                      phone=f"1390000{n:04d}", categories="elderly")
        s.add(v)
        s.flush()
        s.add(TeamMember(team_id=team_id, volunteer_id=v.id, leader=leader))
        s.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def cast(db_url: str, district: geo.District, client: TestClient) -> Cast:
    with session_maker(db_url)() as s:
        s.execute(delete(Evidence))  # reset() does not know photos yet
        s.commit()
    reset(db_url, district)
    actors = Actors(db_url, district)
    team_id = actors.new_team("elderly", capacity=200)
    other = actors.new_team("elderly", capacity=200)
    return Cast(
        resident=actors.resident(), other_resident=actors.resident(),
        dispatcher=actors.dispatcher(), team_id=team_id, team=actors.team(team_id),
        other_team=actors.team(other),
        leader=volunteer(db_url, district, team_id, leader=True, n=1),
        member=volunteer(db_url, district, team_id, leader=False, n=2),
    )


def accepted(client: TestClient, cast: Cast, *, accept: bool = True) -> int:
    """A new request of ``cast.resident``, dispatched to ``cast.team_id`` (and accepted)."""
    r = client.post("/requests", json=new_request("elderly"), headers=cast.resident)
    assert r.status_code == 201, r.text
    rid = int(r.json()["id"])
    r = client.post(f"/requests/{rid}/dispatch", json={"team_id": cast.team_id},
                    headers=cast.dispatcher)
    assert r.status_code == 200, r.text
    if accept:
        r = client.post(f"/requests/{rid}/accept", headers=cast.team)
        assert r.status_code == 200 and r.json()["state"] == "accepted", r.text
    return rid


def upload(client: TestClient, rid: int, data: bytes, headers: dict[str, str], *,
           name: str = "photo.jpg", content_type: str = "image/jpeg") -> httpx.Response:
    return client.post(f"/requests/{rid}/photos", files={"file": (name, data, content_type)},
                       headers=headers)


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["title"] + body["detail"])  # zh-CN
    return body


def rows(url: str, rid: int) -> int:
    with session_maker(url)() as s:
        return int(s.scalar(select(func.count()).select_from(Evidence)
                            .where(Evidence.request_id == rid)) or 0)


def stored_files(settings: Settings) -> set[Path]:
    root = settings.resolved_evidence_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# -------------------------------------------------------------------------------- tests


def test_a_gps_tagged_jpeg_is_stored_upright_without_any_metadata(
    client: TestClient, cast: Cast, settings: Settings, db_url: str
) -> None:
    original = sideways_jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as im:  # the upload really carries all of it
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == GPS_LAT
        assert {"icc_profile", "comment", "xmp"} <= set(im.info)
    rid = accepted(client, cast)
    r = upload(client, rid, original, cast.team)
    assert r.status_code == 201, r.text
    photo = r.json()
    sha = photo["sha256"]
    assert photo["content_type"] == "image/jpeg"
    assert (photo["width"], photo["height"]) == (48, 96)  # turned upright
    assert photo["url"].startswith(f"/requests/{rid}/photos/{sha}")
    assert r.headers["location"] == photo["url"]

    # On disk: named by the hash of its own bytes, as <root>/ab/cdef….jpg, owner-only.
    path = settings.resolved_evidence_dir / sha[:2] / f"{sha[2:]}.jpg"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha and len(data) == photo["bytes"]
    assert path.stat().st_mode & 0o077 == 0
    assert b"TestPhone" not in data and b"SN-0042" not in data and b"taken at home" not in data
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == (48, 96)
        assert metadata_left(im) == {}
        rgb = im.convert("RGB")
        top, bottom = rgb.getpixel((24, 10)), rgb.getpixel((24, 85))
    # Turned 90° clockwise, the red left half is on top and the blue right half below.
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom

    # The assigned team reads it back byte for byte, with the headers of a private image.
    r = client.get(photo["url"], headers=cast.team)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"].startswith("private")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline")
    assert rows(db_url, rid) == 1


def test_png_and_webp_are_accepted_and_stripped(
    client: TestClient, cast: Cast, settings: Settings
) -> None:
    from PIL import PngImagePlugin

    rid = accepted(client, cast)
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "GPS 37.8024,112.5501")
    rgba = Image.new("RGBA", (40, 30), (0, 128, 0, 128))
    png = encoded("PNG", rgba, pnginfo=text, exif=exif_with_gps())
    webp = encoded("WEBP", two_halves((50, 40)), exif=exif_with_gps(), quality=90)
    for data, ctype, ext, size in ((png, "image/png", "png", (40, 30)),
                                   (webp, "image/webp", "webp", (50, 40))):
        r = upload(client, rid, data, cast.leader, name=f"x.{ext}", content_type=ctype)
        assert r.status_code == 201, r.text
        photo = r.json()
        assert photo["content_type"] == ctype and (photo["width"], photo["height"]) == size
        path = settings.resolved_evidence_dir / photo["sha256"][:2] / f"{photo['sha256'][2:]}.{ext}"
        with Image.open(path) as im:
            assert im.format == ext.upper() and metadata_left(im) == {}
            if ext == "png":
                assert im.mode == "RGBA" and im.getpixel((0, 0)) == (0, 128, 0, 128)


def test_what_is_not_a_whole_jpeg_png_or_webp_is_refused(
    client: TestClient, cast: Cast, settings: Settings, db_url: str
) -> None:
    rid = accepted(client, cast)
    before = stored_files(settings)
    gif = encoded("GIF", Image.new("P", (20, 20)))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    jpeg = noise_jpeg()
    for data, name, ctype in ((gif, "a.gif", "image/gif"),
                              (gif, "a.jpg", "image/jpeg"),
                              (svg, "a.svg", "image/svg+xml"),
                              (html, "photo.jpg", "image/jpeg"),
                              (jpeg[: len(jpeg) // 2], "cut.jpg", "image/jpeg"),
                              (b"", "empty.jpg", "image/jpeg")):
        problem(upload(client, rid, data, cast.team, name=name, content_type=ctype),
                415, "unsupported_photo")
    assert rows(db_url, rid) == 0 and stored_files(settings) == before
    # No part named "file", or not multipart at all: an invalid request.
    r = client.post(f"/requests/{rid}/photos", files={"photo": ("a.jpg", jpeg, "image/jpeg")},
                    headers=cast.team)
    problem(r, 422, "invalid_request")
    r = client.post(f"/requests/{rid}/photos", content=jpeg,
                    headers={**cast.team, "Content-Type": "image/jpeg"})
    problem(r, 422, "invalid_request")


def test_too_large_photos_are_refused_and_nothing_is_stored(
    client: TestClient, cast: Cast, settings: Settings, db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = accepted(client, cast)
    before = stored_files(settings)
    big = noise_jpeg((400, 400))
    monkeypatch.setattr(settings, "photo_max_bytes", len(big) - 1)
    problem(upload(client, rid, big, cast.team), 413, "photo_too_large")

    # Streamed without a Content-Length: counted as it arrives.
    boundary = "evidence-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for i in range(0, len(big), 16_384):
            yield big[i:i + 16_384]
        yield tail

    r = client.post(f"/requests/{rid}/photos", content=chunks(),
                    headers={**cast.team,
                             "Content-Type": f"multipart/form-data; boundary={boundary}"})
    problem(r, 413, "photo_too_large")
    # Above the app-wide body cap of other routes, the photo's own limit applies.
    monkeypatch.setattr(settings, "photo_max_bytes", 5 * 1024 * 1024)
    huge = b"\xff\xd8" + os.urandom(3 * 1024 * 1024)
    problem(upload(client, rid, huge, cast.team), 415, "unsupported_photo")

    # A small file whose pixels would not fit in memory is refused before it is decoded.
    problem(upload(client, rid, png_claiming(9000, 9000), cast.team, name="b.png",
                   content_type="image/png"), 413, "photo_too_large")
    problem(upload(client, rid, png_claiming(30_000, 30_000), cast.team, name="b.png",
                   content_type="image/png"), 413, "photo_too_large")
    monkeypatch.setattr(settings, "photo_max_pixels", 96 * 48 - 1)
    problem(upload(client, rid, encoded("JPEG"), cast.team), 413, "photo_too_large")
    assert rows(db_url, rid) == 0 and stored_files(settings) == before


def test_a_large_photo_is_scaled_down(
    client: TestClient, cast: Cast, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr(settings, "photo_max_edge_px", 100)
    rid = accepted(client, cast)
    r = upload(client, rid, encoded("JPEG", two_halves((800, 400))), cast.team)
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (100, 50)


def test_the_same_photo_twice_is_one_file_and_one_row_and_the_count_is_capped(
    client: TestClient, cast: Cast, settings: Settings, db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = accepted(client, cast)
    data = sideways_jpeg_with_gps()
    first = upload(client, rid, data, cast.team)
    again = upload(client, rid, data, cast.leader, name="again.jpg")
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.json() == first.json()
    assert rows(db_url, rid) == 1
    sha = first.json()["sha256"]
    assert [p for p in stored_files(settings) if p.stem == sha[2:]] == [
        settings.resolved_evidence_dir / sha[:2] / f"{sha[2:]}.jpg"]

    monkeypatch.setattr(settings, "photos_per_request", 2)
    second = upload(client, rid, encoded("PNG"), cast.team, name="b.png",
                    content_type="image/png")
    assert second.status_code == 201, second.text
    body = problem(upload(client, rid, encoded("WEBP"), cast.team, name="c.webp",
                          content_type="image/webp"), 409, "too_many_photos")
    assert body["limit"] == 2
    assert upload(client, rid, data, cast.team).status_code == 200  # still idempotent
    assert rows(db_url, rid) == 2


def test_the_file_is_on_disk_before_the_lock_is_taken_and_the_row_committed(
    client: TestClient, cast: Cast, settings: Settings, db_url: str,
) -> None:
    """While another writer holds the lock, the photo is already written; then one row."""
    rid = accepted(client, cast)
    data = noise_jpeg((64, 48))  # a photo of this test's own: its file is not there yet
    answers: list[httpx.Response] = []

    def send(headers: dict[str, str]) -> None:
        answers.append(upload(client, rid, data, headers))

    before = stored_files(settings)
    # SQLite: BEGIN IMMEDIATE (every writer queues); PostgreSQL: the request's row locked.
    with session_maker(db_url)() as holder:
        holder.execute(select(ServiceRequest.id).where(ServiceRequest.id == rid)
                       .with_for_update())
        senders = [threading.Thread(target=send, args=(who,)) for who in (cast.team, cast.leader)]
        for t in senders:
            t.start()
        deadline = time.monotonic() + 20
        while not (new := stored_files(settings) - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let the second upload reach the lock as well
        assert len(new) == 1, new  # written, though the lock is not to be had
        (path,) = new
        assert path.suffix == ".jpg" and path.stat().st_mode & 0o077 == 0
        assert all(t.is_alive() for t in senders) and not answers  # waiting for the lock
        with session_maker(db_url, readonly=True)() as look:
            assert look.scalar(select(func.count()).select_from(Evidence)
                               .where(Evidence.request_id == rid)) == 0
        holder.rollback()
    for t in senders:
        t.join(timeout=30)
    assert sorted(r.status_code for r in answers) == [200, 201], [r.text for r in answers]
    assert answers[0].json() == answers[1].json()
    sha = answers[0].json()["sha256"]
    assert path == settings.resolved_evidence_dir / sha[:2] / f"{sha[2:]}.jpg"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert rows(db_url, rid) == 1 and stored_files(settings) - before == {path}
    assert not list(path.parent.glob(".part-*"))  # no temporary file left behind


def test_the_limits_are_public(client: TestClient, settings: Settings,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "photos_per_request", 4)
    r = client.get("/requests/photos/limits")
    assert r.status_code == 200, r.text
    assert r.json() == {"photo_max_bytes": settings.photo_max_bytes,
                        "photo_max_pixels": settings.photo_max_pixels,
                        "photo_max_edge_px": settings.photo_max_edge_px,
                        "photos_per_request": 4}


def test_who_may_upload(client: TestClient, cast: Cast, db_url: str) -> None:
    rid = accepted(client, cast, accept=False)
    data = encoded("JPEG")
    # Dispatched, not yet accepted: too early.
    body = problem(upload(client, rid, data, cast.team), 409, "invalid_transition")
    assert body["state"] == "dispatched"
    client.post(f"/requests/{rid}/accept", headers=cast.team).raise_for_status()
    problem(upload(client, rid, data, cast.resident), 403, "forbidden")
    problem(upload(client, rid, data, cast.dispatcher), 403, "forbidden")
    problem(upload(client, rid, data, cast.other_resident), 404, "not_found")
    problem(upload(client, rid, data, cast.other_team), 404, "not_found")
    # A member who does not lead the team does not even see the request.
    problem(upload(client, rid, data, cast.member), 404, "not_found")
    problem(client.post(f"/requests/{rid}/photos", files={"file": ("a.jpg", data)}),
            401, "unauthorized")
    assert rows(db_url, rid) == 0
    assert upload(client, rid, data, cast.leader).status_code == 201
    # Completed: still allowed (photos come with the completion).
    client.post(f"/requests/{rid}/complete", json={"hours": 1},
                headers=cast.team).raise_for_status()
    r = upload(client, rid, encoded("PNG"), cast.team, name="b.png", content_type="image/png")
    assert r.status_code == 201, r.text
    problem(upload(client, 2_000_000_000, data, cast.team), 404, "not_found")


def station(url: str, site_id: str) -> dict[str, str]:
    """A 所/站 account for a position."""
    with session_maker(url)() as s:
        _, token = create_user(s, role="station", name=f"所站{site_id}", site_id=site_id)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def outside(url: str, site_id: str) -> str:
    """A position with nothing under it whose area does not hold ``site_id``."""
    with session_maker(url)() as s:
        rows = s.execute(select(Position.site_id, Position.parent_id)).all()
    parents = {p for _, p in rows if p}
    parent_of = dict(rows)
    above, at = set(), site_id
    while at:
        above.add(at)
        at = parent_of.get(at)
    return next(sid for sid, _ in rows if sid not in parents and sid not in above)


def test_who_may_see_a_photo_and_the_request_view_lists_them(
    client: TestClient, cast: Cast, db_url: str
) -> None:
    rid = accepted(client, cast)
    r = upload(client, rid, sideways_jpeg_with_gps(), cast.team)
    assert r.status_code == 201, r.text
    photo = r.json()
    url = photo["url"]
    for who in (cast.resident, cast.dispatcher, cast.team, cast.leader):
        r = client.get(url, headers=who)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
        assert hashlib.sha256(r.content).hexdigest() == photo["sha256"]
    for who in (cast.other_resident, cast.other_team, cast.member):
        problem(client.get(url, headers=who), 404, "not_found")
    # 所/站 accounts: the one whose area holds the request sees it, another does not.
    area = client.get(f"/requests/{rid}", headers=cast.dispatcher).json()["area_site_id"]
    assert area
    assert client.get(url, headers=station(db_url, area)).status_code == 200
    problem(client.get(url, headers=station(db_url, outside(db_url, area))), 404, "not_found")
    problem(client.get(url), 401, "unauthorized")
    # A hash of another request's photo, or of none, is not found either.
    other = accepted(client, cast)
    problem(client.get(f"/requests/{other}/photos/{photo['sha256']}", headers=cast.team),
            404, "not_found")
    problem(client.get(f"/requests/{rid}/photos/{'0' * 64}", headers=cast.team),
            404, "not_found")
    assert client.get(f"/requests/{rid}/photos/not-a-hash", headers=cast.team).status_code == 422

    # The request view lists the photos, for the resident and in lists too.
    view = client.get(f"/requests/{rid}", headers=cast.resident).json()
    assert view["photos"] == [{k: photo[k] for k in
                               ("sha256", "url", "content_type", "width", "height")}]
    page = client.get("/requests", headers=cast.dispatcher, params={"limit": 100}).json()
    listed = {item["id"]: item["photos"] for item in page["items"]}
    assert [p["sha256"] for p in listed[rid]] == [photo["sha256"]] and listed[other] == []


def read_answer(sock: socket.socket) -> str:
    """Read one HTTP/1.1 answer with a Content-Length from a socket."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65_536)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65_536)
    return (head + b"\r\n\r\n" + body).decode()


def test_the_upload_is_refused_while_it_streams_on_a_real_server(
    cast: Cast, settings: Settings, db_url: str, cache_dir: Path, tmp_path: Path,
) -> None:
    """A real uvicorn answers 413 after the limit, before the rest of the body is sent."""
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the transport")
    limit = 200_000
    server = Server(url=db_url, cache=cache_dir, log=tmp_path / "server.log", env={
        "PRACTICE_CIRCLE_EVIDENCE_DIR": settings.evidence_dir,
        "PRACTICE_CIRCLE_PHOTO_MAX_BYTES": str(limit),
        "PRACTICE_CIRCLE_RATE_LIMIT_ENABLED": "false",
    }).start()
    try:
        client = httpx.Client(base_url=server.base, timeout=30)
        with client:
            r = client.post("/requests", json=new_request("elderly"), headers=cast.resident)
            rid = r.json()["id"]
            client.post(f"/requests/{rid}/dispatch", json={"team_id": cast.team_id},
                        headers=cast.dispatcher).raise_for_status()
            client.post(f"/requests/{rid}/accept", headers=cast.team).raise_for_status()
        boundary = "stream-boundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"a.jpg\"\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall((f"POST /requests/{rid}/photos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: {cast.team['Authorization']}\r\n"
                          f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n").encode())
            piece = b"\xff" * 32_768
            # Send a little more than the limit and no end of the body: the answer must come
            # all the same (a server waiting for the whole body would time the socket out).
            for data in (head, *[piece] * (limit // len(piece) + 2)):
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            answer = read_answer(sock)
        assert answer.startswith("HTTP/1.1 413"), answer
        assert '"code":"photo_too_large"' in answer and '"max_bytes":200000' in answer
        assert rows(db_url, rid) == 0
    finally:
        server.stop()
