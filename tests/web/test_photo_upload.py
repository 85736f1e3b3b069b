"""A leader's phone scales a big photo down before it uploads it (real chromium, real uvicorn).

A 24 MP phone JPEG over the server's byte limit, taken sideways (EXIF orientation 6) with GPS
in its EXIF: the page reads the server's limits (``GET /requests/photos/limits``), draws the
photo upright on a canvas no longer than ``photo_max_edge_px`` and sends that JPEG, so the
upload is accepted (201) and its bytes carry no EXIF even before the server strips it.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image

import geo
from maps import assets
from tests.maps.helpers import skip_or_fail
from tests.web.helpers import Phone, Server, run_server, signed_in_as

pytestmark = pytest.mark.browser

TEAM = f"{geo.DEFAULT_DISTRICT}-C001-elderly"


@pytest.fixture(scope="module")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``uvicorn api.main:app`` with the default photo limits (5 MiB, 2560 px)."""
    if assets.missing_assets():
        skip_or_fail("page assets missing: run `npm ci` at the repository root")
    with run_server(cache_dir, tmp_path_factory.mktemp("photo")) as srv:
        yield srv


def _token(server: Server, role: str, name: str, team_id: str | None = None) -> str:
    from api.services.accounts import create_user
    from api.storage.session import session_maker

    with session_maker(server.db_url)() as s:
        _, token = create_user(s, role=role, name=name, team_id=team_id)
        s.commit()
    return token


def phone_jpeg(path: Path, min_bytes: int) -> None:
    """A 6000 x 4000 JPEG stored sideways (turn 90° clockwise to view), GPS tagged.

    Red on the stored left half, blue on the right, grain so it does not compress away:
    upright, red is on top.
    """
    w, h = 6000, 4000
    im = Image.new("RGB", (w, h), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, w // 2, h))
    grain = Image.frombytes("L", (w // 4, h // 4), os.urandom(w * h // 16))
    grain = grain.resize((w, h), Image.Resampling.NEAREST)
    im = Image.blend(im, Image.merge("RGB", (grain, grain, grain)), 0.25)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TestPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (37.0, 48.0, 8.64)
    im.save(path, "JPEG", quality=94, exif=exif)
    assert path.stat().st_size > min_bytes, path.stat().st_size  # the server alone would refuse


#: Runs before the page's scripts: every blob appended to a FormData is kept, as appended.
_KEEP_FORM_FILES = """
window.__formFiles = [];
const append = FormData.prototype.append;
FormData.prototype.append = function (field, value, name) {
  if (value instanceof Blob) { window.__formFiles.push({field, blob: value, name}); }
  return append.apply(this, arguments);
};
"""


def assert_upright_without_metadata(data: bytes, edge: int) -> None:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert max(im.size) == edge and im.height > im.width, im.size  # portrait, as viewed
        assert not len(im.getexif()) and "exif" not in im.info, im.getexif()
        rgb = im.convert("RGB")
        mid = im.width // 2
        top, bottom = rgb.getpixel((mid, 40)), rgb.getpixel((mid, im.height - 40))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and top[2] < 110, top  # red on top: turned upright by its EXIF
    assert bottom[2] > 150 and bottom[0] < 110, bottom
    assert b"TestPhone" not in data


def test_a_big_phone_photo_is_scaled_down_on_the_phone_and_arrives(
    phone: Callable[..., Phone], server: Server, tmp_path: Path,
) -> None:
    limits = server.call("GET", "/requests/photos/limits")
    assert limits["photo_max_edge_px"] == 2560 and limits["photo_max_bytes"] == 5 * 1024 * 1024
    resident = _token(server, "resident", "王阿姨")
    dispatcher = _token(server, "dispatcher", "调度员")
    team = _token(server, "team", "敬老助老队", team_id=TEAM)
    site = server.call("GET", f"/teams/{TEAM}")["site_id"]
    at = next(f["geometry"]["coordinates"] for f in server.call("GET", "/sites")["features"]
              if f["properties"]["site_id"] == site)
    order = server.call("POST", "/requests", {
        "lon": at[0], "lat": at[1], "category": "elderly", "description": "帮忙打扫房间",
        "contact": "13812345678"}, resident)
    server.call("POST", f"/requests/{order['id']}/dispatch", {"team_id": TEAM}, dispatcher)
    server.call("POST", f"/requests/{order['id']}/accept", {}, team)

    photo = tmp_path / "IMG_0001.jpg"
    phone_jpeg(photo, limits["photo_max_bytes"])
    ph = phone((at[0], at[1]))
    # Keep what the page puts in its upload form (chromium does not hand playwright a body
    # made of blobs): read back below, byte for byte.
    ph.page.add_init_script(_KEEP_FORM_FILES)
    sent: list[Any] = []
    answers: list[int] = []
    ph.page.on("request", lambda r: sent.append(r) if r.method == "POST"
               and r.url.split("?")[0].endswith("/photos") else None)
    ph.page.on("response", lambda r: answers.append(r.status) if r.request.method == "POST"
               and r.url.split("?")[0].endswith("/photos") else None)
    signed_in_as(ph, team, f"tasks/{order['id']}")
    ph.ready("tasks")
    page = ph.page
    page.wait_for_selector("#task-detail[data-state='accepted'] #complete-form")
    # The page names the server's count, not one of its own.
    page.wait_for_function(
        "(n) => document.getElementById('task-photos-picked').textContent.includes('最多 ' + n)",
        arg=limits["photos_per_request"])
    page.set_input_files("#task-photos", str(photo))
    page.fill("#task-hours", "1")
    page.click("#task-complete")
    page.wait_for_selector("#task-detail[data-state='completed']", timeout=60_000)

    assert answers == [201] and len(sent) == 1
    assert sent[0].headers["content-type"].startswith("multipart/form-data")
    kept = page.evaluate("""() => Promise.all(window.__formFiles.map(async (f) => {
        const bytes = new Uint8Array(await f.blob.arrayBuffer());
        let s = "";
        for (let i = 0; i < bytes.length; i += 32768) {
          s += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
        }
        return {name: f.name, field: f.field, type: f.blob.type, b64: btoa(s)};
      }))""")
    (part,) = kept
    assert part["field"] == "file" and part["type"] == "image/jpeg"
    assert part["name"] == "IMG_0001.jpg"
    sent_jpeg = base64.b64decode(part["b64"])
    assert len(sent_jpeg) < limits["photo_max_bytes"] < photo.stat().st_size
    assert_upright_without_metadata(sent_jpeg, limits["photo_max_edge_px"])  # as it left

    view = server.call("GET", f"/requests/{order['id']}", token=resident)
    (stored,) = view["photos"]
    assert max(stored["width"], stored["height"]) == limits["photo_max_edge_px"]
    data = server.get_bytes(stored["url"], token=resident)
    assert_upright_without_metadata(data, limits["photo_max_edge_px"])
