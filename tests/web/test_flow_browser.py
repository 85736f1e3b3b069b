"""One order from the phone to the workbench and back, in a real browser against a real server.

The whole story of issue #10 in Debian's chromium, each person in their own browser context
(they would otherwise share the ``pc-token`` in localStorage), everyone signing in by phone
number and the one-time code the server logs:

1. a resident (360 x 640, located in 小店区) sees the 服务菜单 with walking minutes and orders
   敬老助老 from it;
2. a dispatcher (made with ``practice-circle users create --role dispatcher --phone``) finds the
   order on /desk/ (1280 x 800) with its SLA timer and dispatches it to the suggested team;
3. that team's leader (a volunteer an admin made leader) accepts it on /m/ and completes it
   with a note, hours and a JPEG photo carrying EXIF GPS, which is stored without EXIF;
4. the resident sees it done, with the photo, and gives five stars.

No request of any page leaves 127.0.0.1, no page logs an error; a screenshot of each step
goes to ``artifacts/flow-*.png`` (for the README).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageDraw

from maps import assets
from tests.maps.helpers import skip_or_fail
from tests.web.helpers import DESKTOP, Phone, Server, run_server, screenshot, sign_in

pytestmark = pytest.mark.browser

RESIDENT_PHONE = "13800000011"
DISPATCHER_PHONE = "13800000022"
LEADER_PHONE = "13900000033"
CATEGORY = "elderly"


@pytest.fixture(scope="module")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server (own cache copy, database and evidence folder) with its dispatcher."""
    if assets.missing_assets():
        skip_or_fail("page assets missing: run `npm ci` at the repository root")
    with run_server(cache_dir, tmp_path_factory.mktemp("flow")) as srv:
        # As an operator would: the CLI, against the server's own cache (its key hashes phones).
        srv.cli("users", "create", "--role", "dispatcher", "--name", "调度员小周",
                "--phone", DISPATCHER_PHONE)
        yield srv


def _admin(server: Server) -> str:
    from api.services.accounts import create_user
    from api.storage.session import session_maker

    with session_maker(server.db_url)() as s:
        _, token = create_user(s, role="admin", name="管理员")
        s.commit()
    return token


def _photo_with_gps(path: Path) -> None:
    """A real camera-like JPEG: a picture plus EXIF naming the camera and where it was taken."""
    im = Image.new("RGB", (640, 480), (236, 232, 220))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 300, 640, 480), fill=(120, 150, 90))      # lawn
    draw.rectangle((180, 140, 460, 360), fill=(190, 70, 50))     # a house
    draw.polygon([(160, 150), (320, 50), (480, 150)], fill=(90, 60, 50))
    draw.rectangle((290, 260, 350, 360), fill=(70, 50, 40))      # its door
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "FlowCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (37.0, 48.0, 9.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (112.0, 33.0, 1.0)
    im.save(path, "JPEG", exif=exif, quality=90)
    with Image.open(path) as back:  # the upload really carries a location
        assert back.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"


def test_resident_orders_dispatcher_dispatches_leader_completes_resident_reviews(
    phone: Callable[..., Phone], server: Server, tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        laps[name] = round(time.monotonic() - t0, 1)

    sites = server.call("GET", "/sites")["features"]
    station = next(f for f in sites if f["properties"]["level"] == "community")
    sx, sy = station["geometry"]["coordinates"]
    home = (round(sx + 0.0002, 6), round(sy + 0.0001, 6))  # a doorstep by a 站

    # 1. The resident: signs in, sees the menu with walking minutes, orders 敬老助老 from it.
    res = phone(home)
    page = res.page
    sign_in(res, server, RESIDENT_PHONE)
    res.ready("home")
    page.wait_for_function(
        "([lon, lat]) => { const l = document.getElementById('menu-list');"
        " return l && Math.abs(+l.dataset.lon - lon) < 1e-6"
        " && Math.abs(+l.dataset.lat - lat) < 1e-6 && l.children.length > 0; }",
        arg=list(home), timeout=15000)
    assert page.get_attribute("#loc-status", "data-source") == "gps"
    page.wait_for_selector("#home-map[data-basemap=drawn]")
    menu = {i["category"]: i for i in
            server.call("GET", f"/services/menu?lon={home[0]}&lat={home[1]}")["items"]}
    offer = menu[CATEGORY]
    assert offer["available"] and offer["team_id"]
    row = page.locator(f"[data-testid=menu-item][data-category={CATEGORY}]")
    assert offer["team_name"] in row.inner_text()
    assert row.locator("[data-testid=menu-minutes]").inner_text() == (
        f"步行约 {max(1, math.ceil(offer['walk_minutes']))} 分钟")
    # Down to the line ordered from (nearest first: it may be lower), above the tab bar.
    page.evaluate("(c) => document.querySelector(`[data-testid=menu-item][data-category=${c}]`)"
                  ".scrollIntoView({block: 'center'})", CATEGORY)
    screenshot(res, "flow-1-menu.png")
    lap("1 menu")

    row.locator(f"[data-testid=menu-order][data-category={CATEGORY}]").click()
    res.ready("order")
    assert page.input_value("#order-category") == CATEGORY
    page.fill("#order-description", "老人腿脚不便，想请人陪同去社区医院复诊")
    page.fill("#order-contact", RESIDENT_PHONE)
    page.click("#order-submit")
    res.ready("orders")
    order_id = int(page.get_attribute("#order-detail", "data-id") or 0)
    assert order_id > 0
    assert page.get_attribute("#order-detail", "data-state") == "submitted"
    assert page.locator("#order-state").inner_text() == "已点单（待派单）"
    screenshot(res, "flow-2-order.png")
    resident = res.token()
    lap("2 order")

    # 2. The dispatcher: the order in the queue with its SLA timer; 派单 to the suggested team.
    desk = phone(None, "/desk/", viewport=DESKTOP)
    dp = desk.page
    dp.wait_for_selector("#desk-signin:not([hidden])")
    dp.fill("#signin-phone", DISPATCHER_PHONE)
    mark = server.log_size()
    dp.click("#signin-send")
    dp.fill("#signin-code", server.code_for(DISPATCHER_PHONE, mark))
    dp.click("#signin-submit")
    card = f"[data-testid=group-submitted] [data-testid=order-{order_id}]"
    dp.wait_for_selector(card)
    assert "调度员小周" in (dp.text_content("[data-testid=desk-user]") or "")
    sla = dp.text_content(f"[data-testid=sla-{order_id}]") or ""
    assert re.fullmatch(r"剩余 (59|60):\d\d", sla), sla  # 敬老助老: 60 minutes by default
    dp.click(f"[data-testid=dispatch-{order_id}]")
    suggested = dp.locator("[data-testid=suggestions] .d-suggested button")
    suggested.wait_for()
    team_id = suggested.get_attribute("data-team")
    assert team_id == offer["team_id"]  # the menu promised the team the desk suggests
    screenshot(desk, "flow-3-desk.png")
    suggested.click()
    dp.wait_for_selector(f"[data-testid=group-dispatched] [data-testid=order-{order_id}]")
    dp.wait_for_selector("#history li[data-action=dispatch]")
    seen = server.call("GET", f"/requests/{order_id}", token=resident)
    assert seen["state"] == "dispatched" and seen["team"]["team_id"] == team_id
    lap("3 desk")

    # 3. That team's leader: a volunteer the admin makes leader; accepts, completes with a photo.
    admin = _admin(server)
    reg = server.call("POST", "/volunteers", {"name": "陈队长", "phone": LEADER_PHONE})
    server.call("POST", f"/teams/{team_id}/members",
                {"volunteer_id": reg["volunteer"]["id"], "leader": True}, admin)
    lead = phone(home)
    lp = lead.page
    sign_in(lead, server, LEADER_PHONE)
    lp.click("#tab-tasks")
    lead.ready("tasks")
    lp.click(f"[data-testid=task][data-id='{order_id}'] a")
    lead.ready("tasks")
    assert lp.get_attribute("#task-detail", "data-state") == "dispatched"
    assert lp.locator("#task-call").inner_text() == RESIDENT_PHONE  # the team may call
    lp.click("#task-accept")
    lp.wait_for_selector("#task-detail[data-state='accepted'] #complete-form")
    photo = tmp_path / "陪同复诊.jpg"
    _photo_with_gps(photo)
    lp.set_input_files("#task-photos", str(photo))
    lp.fill("#task-note", "已陪同复诊，医嘱已交给家属")
    lp.fill("#task-hours", "2")
    lp.click("#task-complete")
    lp.wait_for_selector("#task-detail[data-state='completed']")
    lp.locator("#order-photos img[src^='blob:']").scroll_into_view_if_needed()
    lp.wait_for_function("() => { const i = document.querySelector('#order-photos img');"
                         " return i && i.complete && i.naturalWidth > 0; }")
    screenshot(lead, "flow-4-leader-complete.png")
    lap("4 leader")

    # The stored photo is the picture without its EXIF (no location), kept by content hash.
    done = server.call("GET", f"/requests/{order_id}", token=resident)
    assert done["state"] == "completed" and done["hours"] == 2
    [stored] = done["photos"]
    data = server.get_bytes(stored["url"], token=resident)
    assert hashlib.sha256(data).hexdigest() == stored["sha256"]
    evidence = Path(server.env["PRACTICE_CIRCLE_EVIDENCE_DIR"])
    on_disk = [p for p in evidence.rglob("*") if p.is_file()]
    assert len(on_disk) == 1 and on_disk[0].read_bytes() == data
    assert on_disk[0].parent.name + on_disk[0].stem == stored["sha256"]
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (640, 480)
        assert len(im.getexif()) == 0 and "exif" not in im.info
    assert b"Exif" not in data and b"FlowCam" not in data

    # 4. The resident: 我的 shows it done; the photo; five stars.
    page.click("#tab-orders")
    page.reload()
    res.ready("orders")
    mine = page.locator(f"[data-testid=order-card][data-id='{order_id}']")
    assert mine.get_attribute("data-state") == "completed"
    assert "已完成（待评价）" in mine.inner_text()
    mine.locator("a").first.click()
    res.ready("orders")
    assert page.locator("#order-state").inner_text() == "已完成（待评价）"
    page.wait_for_selector("#order-photos img[src^='blob:']")
    page.click("[data-testid=star-5]")
    page.fill("#review-comment", "队长很耐心，谢谢！")
    page.click("#review-submit")
    page.wait_for_selector("#order-detail[data-state='reviewed'] #order-review")
    steps = page.locator("#order-timeline [data-testid=timeline-item]")
    shown = [steps.nth(i).get_attribute("data-action") for i in range(steps.count())]
    assert shown == ["create", "dispatch", "accept", "complete", "review"], shown
    screenshot(res, "flow-5-resident-review.png", full_page=True)  # state, photo, history
    lap("5 review")

    final = server.call("GET", f"/requests/{order_id}", token=resident)
    assert final["state"] == "reviewed" and final["review"]["stars"] == 5
    assert [h["action"] for h in final["history"]] == [
        "create", "dispatch", "accept", "complete", "review"]
    assert [h["actor_role"] for h in final["history"]] == [
        "resident", "dispatcher", "volunteer", "volunteer", "resident"]
    for ph in (res, desk, lead):  # (the fixture checks again once the contexts are closed)
        assert ph.requests and ph.external == [], ph.external
        assert ph.errors == [], ph.errors
    print("flow laps (s):", laps)
