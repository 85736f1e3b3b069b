"""The phone pages (/m/) in a real browser (Debian's chromium) against a real uvicorn server.

One server (its own cache copy and SQLite database) and one browser for the module; each test
opens 360 x 640 phone contexts with geolocation granted. People sign in as people do: the
one-time code is read from the server's log line (no webhook configured). Every request any
page makes is recorded, and none may leave 127.0.0.1.
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import geo
from maps import assets
from tests.browser import (
    MIN_TEXT_PX,
    launch,
    measure_js,
    poor_contrast_js,
    small_text_js,
    too_small,
)
from tests.maps.helpers import skip_or_fail
from tests.web.helpers import (
    PHONE,
    Phone,
    Server,
    run_server,
    screenshot,
    sign_in,
    signed_in_as,
)

pytestmark = pytest.mark.browser

RESIDENT_PHONE = "13800000001"
VOLUNTEER_PHONE = "13900000002"
LEADER_PHONE = "13900000003"
TEAM = f"{geo.DEFAULT_DISTRICT}-C001-elderly"


@pytest.fixture(scope="module")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``uvicorn api.main:app`` on a free port, with its own cache copy and database."""
    if assets.missing_assets() or not (assets.node_modules_dir() / "jsqr" / "dist").is_dir():
        skip_or_fail("page assets missing: run `npm ci` at the repository root")
    with run_server(cache_dir, tmp_path_factory.mktemp("phone")) as srv:
        yield srv


def _user(server: Server, role: str, name: str) -> str:
    """A staff account made as ``practice-circle users create`` makes it; its token."""
    from api.services.accounts import create_user
    from api.storage.session import session_maker

    with session_maker(server.db_url)() as s:
        _, token = create_user(s, role=role, name=name)
        s.commit()
    return token


@dataclass
class World:
    """Who and what the tests share: staff tokens, the leader, the activity, the places."""

    admin: str
    dispatcher: str
    leader: str
    activity: dict[str, Any]
    reward: dict[str, Any]
    centre: tuple[float, float]
    home: tuple[float, float]


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    """A leader of the centre's 敬老助老 team who published an activity starting now."""
    admin = _user(server, "admin", "管理员")
    dispatcher = _user(server, "dispatcher", "调度员")
    reg = server.call("POST", "/volunteers", {"name": "李队长", "phone": LEADER_PHONE})
    server.call("POST", f"/teams/{TEAM}/members",
                {"volunteer_id": reg["volunteer"]["id"], "leader": True}, admin)
    team = server.call("GET", f"/teams/{TEAM}")
    start = datetime.now(UTC) - timedelta(minutes=10)
    activity = server.call("POST", "/activities", {
        "title": "重阳敬老探访", "category": "elderly", "site_id": team["site_id"],
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": 5}, reg["token"])
    reward = server.call("POST", "/rewards", {"name": "环保购物袋", "site_id": team["site_id"],
                                              "price_points": 10, "stock": 3}, admin)
    sites = server.call("GET", "/sites")["features"]
    centre = next(f for f in sites if f["properties"]["site_id"] == team["site_id"])
    # The resident lives by a 站 some way from the centre, so the menu's minutes differ.
    station = next(f for f in sites if f["properties"]["level"] == "community")
    cx, cy = centre["geometry"]["coordinates"]
    sx, sy = station["geometry"]["coordinates"]
    return World(admin=admin, dispatcher=dispatcher, leader=reg["token"], activity=activity,
                 reward=reward, centre=(cx, cy),
                 home=(round(sx + 0.0002, 6), round(sy + 0.0001, 6)))


def test_resident_signs_in_orders_from_the_menu_and_sees_it(
    phone: Callable[..., Phone], server: Server, world: World,
) -> None:
    ph = phone(world.home)
    page = ph.page
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    sign_in(ph, server, RESIDENT_PHONE)
    ph.ready("home")
    # The phone's position (granted) replaces the centre the page starts from.
    page.wait_for_function(
        "([lon, lat]) => { const l = document.getElementById('menu-list');"
        " return l && Math.abs(+l.dataset.lon - lon) < 1e-6"
        " && Math.abs(+l.dataset.lat - lat) < 1e-6 && l.children.length > 0; }",
        arg=list(world.home), timeout=15000)
    assert page.get_attribute("#loc-status", "data-source") == "gps"
    menu = server.call("GET", f"/services/menu?lon={world.home[0]}&lat={world.home[1]}")
    items = page.locator("[data-testid=menu-item]")
    assert items.count() == len(menu["items"]) == len(geo.CATEGORIES)
    for item in menu["items"]:
        row = page.locator(f"[data-testid=menu-item][data-category={item['category']}]")
        assert item["category_zh"] in row.inner_text()
        if item["available"]:
            minutes = row.locator("[data-testid=menu-minutes]").inner_text()
            assert minutes == f"步行约 {max(1, math.ceil(item['walk_minutes']))} 分钟"
            assert item["team_name"] in row.inner_text()
            assert row.get_attribute("data-within15") == ("1" if item["within_15"] else "0")
    assert page.locator(".leaflet-container").count() == 1
    page.wait_for_selector("#home-map[data-basemap=drawn]")
    # The lower part of the map, then the menu (nearest first) with its walking minutes.
    page.evaluate("() => window.scrollTo(0, document.getElementById('home-map')"
                  ".getBoundingClientRect().bottom + scrollY - 200)")
    screenshot(ph, "phone-menu.png")

    # 点单 from the menu: the category comes along, the position is the phone's.
    page.click("[data-testid=menu-order][data-category=elderly]")
    ph.ready("order")
    assert page.input_value("#order-category") == "elderly"
    # The privacy hint names who reads the whole number (requests_view.sees_contact).
    hint = page.locator("#order-contact + .m-hint").inner_text()
    assert all(w in hint for w in ("调度员", "所/站", "派到的服务队", "138****1234")), hint
    page.fill("#order-description", "帮忙代购一周的药品，下午送到")
    page.fill("#order-contact", "13812341234")
    page.click("#order-submit")
    ph.ready("orders")
    detail = page.locator("#order-detail")
    order_id = int(detail.get_attribute("data-id") or 0)
    assert order_id > 0 and detail.get_attribute("data-state") == "submitted"
    assert page.locator("#order-state").inner_text() == "已点单（待派单）"
    assert page.locator("[data-testid=timeline-item][data-action=create]").count() == 1
    screenshot(ph, "phone-order.png")
    stored = server.call("GET", f"/requests/{order_id}", token=ph.token())
    assert stored["category"] == "elderly"
    assert stored["description"] == "帮忙代购一周的药品，下午送到"
    assert abs(stored["lon"] - world.home[0]) < 1e-6 and abs(stored["lat"] - world.home[1]) < 1e-6
    assert stored["contact_masked"] is True and stored["contact"] == "138****1234"

    # 我的: the order with its state.
    page.click("#tab-orders")
    ph.ready("orders")
    card = page.locator(f"[data-testid=order-card][data-id='{order_id}']")
    assert card.get_attribute("data-state") == "submitted"
    assert "已点单（待派单）" in card.inner_text()

    # A tap on the map chooses another place; the menu follows it.
    page.click("#tab-home")
    ph.ready("home")
    page.wait_for_selector("#home-map[data-basemap=drawn]")
    page.locator("#home-map").click(position={"x": 240, "y": 50})
    page.wait_for_selector("#loc-status[data-source=tap]")
    page.wait_for_function(
        "([lon, lat]) => { const l = document.getElementById('menu-list');"
        " return l.dataset.lon && Math.abs(+l.dataset.lon - lon) > 1e-5"
        " && l.children.length > 0; }", arg=list(world.home), timeout=15000)
    tapped = [float(page.get_attribute("#menu-list", f"data-{k}") or "nan") for k in ("lon", "lat")]
    # north-east of where the phone is (the tap was right of and above the map's centre)
    assert tapped[0] > world.home[0] and tapped[1] > world.home[1]


def test_leader_accepts_and_completes_with_a_photo_and_the_resident_reviews(
    phone: Callable[..., Phone], server: Server, world: World, tmp_path: Path,
) -> None:
    resident = _user(server, "resident", "张阿姨")
    order = server.call("POST", "/requests", {
        "lon": world.centre[0], "lat": world.centre[1], "category": "elderly",
        "description": "陪同去医院复诊", "contact": "13812345678"}, resident)
    server.call("POST", f"/requests/{order['id']}/dispatch", {"team_id": TEAM}, world.dispatcher)

    ph = phone(world.centre)
    page = ph.page
    sign_in(ph, server, LEADER_PHONE)
    world.leader = ph.token()  # signing in on a phone ends the registration's token
    page.click("#tab-tasks")
    ph.ready("tasks")
    page.click(f"[data-testid=task][data-id='{order['id']}'] a")
    ph.ready("tasks")
    assert page.get_attribute("#task-detail", "data-state") == "dispatched"
    assert page.locator("#task-call").inner_text() == "13812345678"  # the assigned team sees it
    # ...and the order's 导航 links (the request view's `navigation`, for who sees the contact).
    nav = server.call("GET", f"/requests/{order['id']}", token=world.dispatcher)["navigation"]
    assert page.locator("#task-detail #nav-amap").get_attribute("href") == nav["amap"]
    assert page.locator("#task-detail #nav-baidu").get_attribute("href") == nav["baidu"]
    page.click("#task-accept")
    page.wait_for_selector("#task-detail[data-state='accepted'] #complete-form")
    photo = tmp_path / "现场.png"
    Image.new("RGB", (64, 48), (200, 40, 30)).save(photo)
    page.set_input_files("#task-photos", str(photo))
    page.fill("#task-note", "已陪同复诊，药已取回")
    page.fill("#task-hours", "1.5")
    page.click("#task-complete")
    page.wait_for_selector("#task-detail[data-state='completed']")
    page.wait_for_selector("#order-photos img[src^='blob:']")
    # 导航: our route from the team's seat first, then the other apps' links.
    page.click("#task-nav")
    ph.ready("nav")
    page.wait_for_selector("#nav-minutes[data-minutes]")
    assert page.locator("#nav-amap").get_attribute("href").startswith("https://uri.amap.com/")
    assert page.locator("#nav-baidu").get_attribute("href").startswith(
        "https://api.map.baidu.com/")
    assert page.locator("#nav-map path.leaflet-interactive, #nav-map canvas").count() > 0
    assert page.locator("#nav-amap").get_attribute("href") == nav["amap"]
    assert not [u for u in ph.requests if "/services/navigation" in u]  # req.navigation used

    done = server.call("GET", f"/requests/{order['id']}", token=resident)
    assert done["state"] == "completed" and done["hours"] == 1.5
    assert len(done.get("photos", [])) == 1

    # The resident sees it done, with the photo, and reviews.
    res = phone(world.centre)
    signed_in_as(res, resident, f"orders/{order['id']}")
    res.ready("orders")
    assert res.page.locator("#order-state").inner_text() == "已完成（待评价）"
    res.page.wait_for_selector("#order-photos img[src^='blob:']")
    res.page.click("[data-testid=star-5]")
    res.page.fill("#review-comment", "准时热心")
    res.page.click("#review-submit")
    res.page.wait_for_selector("#order-detail[data-state='reviewed'] #order-review")
    assert server.call("GET", f"/requests/{order['id']}", token=resident)["review"]["stars"] == 5


def _tabs(ph: Phone) -> list[str]:
    """The tab bar's labels, left to right."""
    return [str(t) for t in ph.page.locator("#tabs a").all_inner_texts()]


def test_volunteer_orders_from_the_menu_and_follows_it_in_mine(
    phone: Callable[..., Phone], server: Server, world: World,
) -> None:
    """A volunteer (here the leader) orders as a resident does; 我的 and 派单 stay apart."""
    resident = _user(server, "resident", "陈大爷")
    theirs = server.call("POST", "/requests", {
        "lon": world.centre[0], "lat": world.centre[1], "category": "elderly",
        "description": "帮忙搬一袋米上楼", "contact": "13812345670"}, resident)
    server.call("POST", f"/requests/{theirs['id']}/dispatch", {"team_id": TEAM}, world.dispatcher)

    ph = phone(world.home)
    page = ph.page
    signed_in_as(ph, world.leader, "home")
    ph.ready("home")
    # 首页 and 我的 besides the volunteer's and the leader's tabs: five, 我的 last.
    assert _tabs(ph) == ["首页", "活动", "派单", "志愿", "我的"]
    page.wait_for_selector("[data-testid=menu-item]")
    page.click("[data-testid=menu-order][data-category=elderly]")
    ph.ready("order")
    assert page.input_value("#order-category") == "elderly"
    page.fill("#order-description", "队长家里老人需要陪同散步")
    page.fill("#order-contact", "13900000003")
    page.click("#order-submit")
    ph.ready("orders")
    mine_id = int(page.get_attribute("#order-detail", "data-id") or 0)
    assert page.get_attribute("#order-detail", "data-state") == "submitted"
    assert page.locator("#order-cancel").count() == 1  # their own: they may cancel it
    me = server.call("GET", "/users/me", token=world.leader)
    stored = server.call("GET", f"/requests/{mine_id}", token=world.leader)
    assert stored["resident_id"] == me["id"] and stored["category"] == "elderly"
    # The API lists both (own + the team's); 我的 shows only the volunteer's own.
    listed = server.call("GET", "/requests?limit=100", token=world.leader)["items"]
    assert {mine_id, theirs["id"]} <= {r["id"] for r in listed}

    def cards(selector: str) -> set[int]:
        return {int(x) for x in page.locator(selector).evaluate_all(
            "els => els.map(e => e.dataset.id)")}

    page.click("#tab-orders")
    ph.ready("orders")
    assert cards("[data-testid=order-card]") == {mine_id}
    # 派单: the team's order, not the volunteer's own (it is in the pool, not the team's).
    page.click("#tab-tasks")
    ph.ready("tasks")
    tasks = cards("[data-testid=task]")
    assert theirs["id"] in tasks and mine_id not in tasks
    # Someone else's order opened under 我的 offers no cancel: only the one who ordered may.
    page.goto(server.base + f"/m/#/orders/{theirs['id']}")
    ph.ready("orders")
    assert page.get_attribute("#order-detail", "data-id") == str(theirs["id"])
    assert page.locator("#order-cancel, #review-form").count() == 0

    # Dispatched to the volunteer's own team (once the team has room), it is a task too, and
    # still theirs in 我的.
    server.call("POST", f"/requests/{theirs['id']}/accept", {}, world.leader)
    server.call("POST", f"/requests/{theirs['id']}/complete", {"hours": 1}, world.leader)
    server.call("POST", f"/requests/{mine_id}/dispatch", {"team_id": TEAM}, world.dispatcher)
    page.click("#tab-tasks")
    ph.ready("tasks")
    assert mine_id in cards("[data-testid=task]")
    page.click("#tab-orders")
    ph.ready("orders")
    assert cards("[data-testid=order-card]") == {mine_id}
    card = page.locator(f"[data-testid=order-card][data-id='{mine_id}']")
    assert card.get_attribute("data-state") == "dispatched"
    # ...and they cancel it from 我的, as a resident would.
    card.locator("a").click()
    ph.ready("orders")
    page.click("#order-cancel")
    page.wait_for_selector("#order-detail[data-state='cancelled']")
    assert server.call("GET", f"/requests/{mine_id}", token=world.leader)["state"] == "cancelled"


def test_volunteer_signs_up_and_checks_in_by_code(
    phone: Callable[..., Phone], server: Server, world: World,
) -> None:
    volunteer = server.call("POST", "/volunteers", {"name": "王志愿", "phone": VOLUNTEER_PHONE})
    act = world.activity
    ph = phone(world.centre)
    page = ph.page
    sign_in(ph, server, VOLUNTEER_PHONE)
    ph.ready("activities")
    assert _tabs(ph) == ["首页", "活动", "志愿", "我的"]  # a volunteer orders too; no 派单
    card = page.locator(f"[data-testid=activity][data-id='{act['id']}']")
    assert act["title"] in card.inner_text()
    assert card.locator("[data-testid=activity-minutes]").inner_text().startswith("步行约 ")
    card.locator("[data-testid=signup]").click()
    card.locator("[data-testid=signup-state]:visible").wait_for()
    assert card.locator("[data-testid=signup-state]").inner_text() == "已报名"
    card.locator("[data-testid=checkin-link]").click()
    ph.ready("checkin")
    shown = server.call("GET", f"/activities/{act['id']}/checkin-code", token=world.leader)
    page.fill("#checkin-code", shown["code"].lower())  # typed as it comes: case does not matter
    page.click("#checkin-submit")
    page.wait_for_selector("#checkin-ok", timeout=15000)
    assert "签到成功" in page.locator("#checkin-ok").inner_text()
    screenshot(ph, "phone-checkin.png")
    mine = server.call("GET", "/volunteers/me/signups", token=ph.token())["items"]
    assert [(m["activity_id"], m["state"], m["checked_in"]) for m in mine] == [
        (act["id"], "confirmed", True)]
    # Another phone signed in as the same volunteer shows it: nothing is kept on the phone.
    other = phone(world.centre)
    signed_in_as(other, ph.token(), "activities")
    other.ready("activities")
    assert other.page.locator(f"[data-testid=activity][data-id='{act['id']}'] "
                              "[data-testid=signup-state]").inner_text() == "已报名 · 已签到"

    # The QR's link opens the page and checks in by itself (here: already done, and it says so).
    assert shown["qr_text"].startswith(server.base + "/m/checkin?")
    page.goto(shown["qr_text"])
    page.wait_for_selector("#checkin-error[data-code]", timeout=15000)
    assert "已签到" in page.locator("#checkin-error").inner_text()
    assert page.evaluate("() => location.pathname") == "/m/"  # a reload does not check in again

    # Two back-filled hours (admin) are 20 points; the store trades 10 for a bag.
    entry = server.call("POST", f"/volunteers/{volunteer['volunteer']['id']}/hours",
                        {"hours": 2, "kind": "backfill", "note": "补录上月活动"}, world.admin)
    server.call("POST", f"/hours/{entry['id']}/approve", {}, world.admin)
    page.click("#tab-record")
    ph.ready("record")
    assert page.locator("#record-hours").inner_text() == "2 小时"
    assert page.locator("#record-points").inner_text() == "20"
    page.click("#record-store")  # the 积分超市 is in 志愿, with the hours
    ph.ready("store")
    assert page.get_attribute("#tab-record", "aria-current") == "page"
    assert page.get_attribute("#store-points", "data-points") == "20"
    assert page.locator("[data-testid=pickup-code]").count() == 0
    # The first answer is lost on its way back (the server did redeem): the page asks again
    # with the same Idempotency-Key and is given that redemption, not a second one.
    keys: list[str] = []
    lost: list[int] = []

    def lose_the_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if lost:
            route.continue_()
            return
        lost.append(route.fetch().status)
        route.abort("failed")

    page.route("**/rewards/*/redemptions", lose_the_first_answer)
    page.click(f"[data-testid=reward][data-id='{world.reward['id']}'] [data-testid=redeem]")
    page.wait_for_selector("#store-points[data-points='10']")
    page.wait_for_selector("[data-testid=pickup-code]")
    page.unroute("**/rewards/*/redemptions")
    assert lost == [201] and len(keys) == 2 and keys[0] == keys[1] != ""
    code = page.locator("[data-testid=pickup-code]").first.inner_text()
    redeemed = server.call("GET", "/volunteers/me/redemptions", token=ph.token())["items"]
    assert [r["code"] for r in redeemed] == [code]  # one redemption, 10 points, not 20
    assert server.call("GET", "/volunteers/me/record", token=ph.token())["points"] == 10
    # Staff of the team seated where the bag is picked up confirm that very code.
    picked = server.call("POST", f"/redemptions/{code}/pickup", {}, world.leader)
    assert picked["reward_id"] == world.reward["id"] and picked["picked_up_at"]
    # The other phone lists the code too, picked up; neither phone keeps codes or sign-ups.
    signed_in_as(other, ph.token(), "store")
    other.ready("store")
    row = other.page.locator("[data-testid=pickup]")
    assert row.count() == 1 and row.get_attribute("data-picked") == "1"
    assert row.locator("[data-testid=pickup-code]").inner_text() == code
    for p in (page, other.page):
        kept = p.evaluate("() => Object.keys(localStorage)")
        assert not [k for k in kept if k.startswith(("pc-signups", "pc-pickups"))], kept


def _y4m(png: bytes, path: Path) -> None:
    """Write a still picture as a Y4M video: what chromium's fake camera plays, looped."""
    from io import BytesIO

    w, h = 640, 480
    qr = Image.open(BytesIO(png)).convert("L")
    side = 400
    frame = Image.new("L", (w, h), 255)
    frame.paste(qr.resize((side, side), Image.Resampling.NEAREST),
                ((w - side) // 2, (h - side) // 2))
    grey = bytes([128]) * (w // 2 * h // 2)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(3):
            f.write(b"FRAME\n" + frame.tobytes() + grey + grey)


def test_volunteer_checks_in_by_scanning_the_qr_with_the_camera(
    phone: Callable[..., Phone], playwright: Any, server: Server, world: World, tmp_path: Path,
) -> None:
    act = world.activity
    reg = server.call("POST", "/volunteers", {"name": "赵志愿", "phone": "13900000004"})
    server.call("POST", f"/activities/{act['id']}/signups", {}, reg["token"])
    req = urllib.request.Request(
        f"{server.base}/activities/{act['id']}/checkin-code?image=png",
        headers={"Authorization": f"Bearer {world.leader}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        png = r.read()
    video = tmp_path / "qr.y4m"
    _y4m(png, video)
    camera = launch(playwright, "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={video}")
    try:
        ph = phone(world.centre, via=camera, permissions=["geolocation", "camera"])
        signed_in_as(ph, reg["token"], f"checkin/{act['id']}")
        ph.ready("checkin")
        ph.page.click("#checkin-scan")
        ph.page.wait_for_selector("#checkin-ok", timeout=20000)
        assert ph.page.input_value("#checkin-code") != ""  # read off the QR, not typed
        assert ph.page.locator("#checkin-video").is_hidden()  # the camera is let go
        assert any(u.endswith("/assets/jsqr/jsQR.js") for u in ph.requests)
        ph.page.context.close()
    finally:
        camera.close()


_ELDER = measure_js(
    """el => {
        const r = el.getBoundingClientRect();
        const s = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
            && !el.closest('[hidden]');
    }""",
    """
    const targets = [...document.querySelectorAll(
        'button, a, input, select, textarea, [role=radio], [role=checkbox]')]
        .filter(visible).map(el => {
            const r = el.getBoundingClientRect();
            return {what: el.id || el.className || el.tagName, w: r.width, h: r.height};
        });""",
    small_text_js("script, style, noscript"),
    f"""
    for (const el of document.querySelectorAll('input, select, textarea')) {{
        if (visible(el) && parseFloat(getComputedStyle(el).fontSize) < {MIN_TEXT_PX})
            small.push([el.id, parseFloat(getComputedStyle(el).fontSize)]);
    }}""",
    poor_contrast_js("body *", "el.closest('.leaflet-pane')"),
    returns="targets, small, poor, width: document.scrollingElement.scrollWidth")


def _elder_ok(ph: Phone, where: str) -> int:
    m = ph.page.evaluate(_ELDER)
    tiny = too_small(m["targets"])
    assert tiny == [], (where, tiny)
    assert m["small"] == [], (where, m["small"])
    assert m["poor"] == [], (where, m["poor"])
    assert m["width"] <= PHONE["width"], where
    return len(m["targets"])


def test_elder_mode_at_360_px(phone: Callable[..., Phone], server: Server, world: World) -> None:
    ph = phone(world.home)
    page = ph.page
    ph.ready("login")
    page.click("#elder-toggle")
    assert page.get_attribute("#elder-toggle", "aria-pressed") == "true"
    n = _elder_ok(ph, "login")
    # Remembered: signed in as a resident, every view keeps it.
    resident = _user(server, "resident", "刘奶奶")
    order = server.call("POST", "/requests", {
        "lon": world.home[0], "lat": world.home[1], "category": "health",
        "description": "上门量血压", "contact": "13812340000"}, resident)
    rejected = server.call("POST", "/requests", {
        "lon": world.home[0], "lat": world.home[1], "category": "legal",
        "description": "咨询房屋租赁合同", "contact": "13812340000"}, resident)
    server.call("POST", f"/requests/{rejected['id']}/reject",
                {"reason": "请直接到社区法律服务站办理"}, world.dispatcher)
    signed_in_as(ph, resident, "home")
    ph.ready("home")
    page.wait_for_selector("[data-testid=menu-item]")
    assert page.evaluate("() => document.documentElement.classList.contains('pc-large')")
    n += _elder_ok(ph, "home")
    page.wait_for_selector("#home-map[data-basemap=drawn]")
    screenshot(ph, "phone-elder.png")
    for view in ("order/health", f"orders/{order['id']}", f"orders/{rejected['id']}",
                 "orders"):
        page.goto(server.base + f"/m/#/{view}")
        ph.ready(view.split("/")[0])
        n += _elder_ok(ph, view)
        if view == f"orders/{rejected['id']}":  # the resident reads why
            assert page.locator("#order-state").inner_text() == "已驳回"
            assert "请直接到社区法律服务站办理" in page.locator("#order-reject-reason").inner_text()

    # The leader's and the volunteer's pages too (the leader is a volunteer).
    task = server.call("POST", "/requests", {
        "lon": world.home[0], "lat": world.home[1], "category": "elderly",
        "description": "帮忙换灯泡", "contact": "13812340000"}, resident)
    server.call("POST", f"/requests/{task['id']}/dispatch", {"team_id": TEAM}, world.dispatcher)
    server.call("POST", f"/requests/{task['id']}/accept", {}, world.leader)
    own = server.call("POST", "/requests", {
        "lon": world.home[0], "lat": world.home[1], "category": "health",
        "description": "队长自己点单：上门量血压", "contact": "13900000003"}, world.leader)
    signed_in_as(ph, world.leader, "tasks")
    ph.ready("tasks")
    assert len(_tabs(ph)) == 5  # every tab a leader who orders has, at 360 px
    labels = page.locator("#tabs a").evaluate_all(
        "els => els.map(e => [e.scrollWidth <= e.clientWidth, e.getBoundingClientRect().right])")
    assert all(fits and right <= PHONE["width"] + 0.5 for fits, right in labels), labels
    for view in ("tasks", f"tasks/{task['id']}", f"nav/request/{task['id']}", "activities",
                 f"checkin/{world.activity['id']}", "record", "store", "home", "order/health",
                 "orders", f"orders/{own['id']}"):
        page.goto(server.base + f"/m/#/{view}")
        ph.ready(view.split("/")[0])
        if view.startswith("nav/"):
            page.wait_for_selector("#nav-links a")
        n += _elder_ok(ph, view)
        if view == f"tasks/{task['id']}":
            assert page.locator("#complete-form #task-photos").count() == 1
        if view == f"orders/{own['id']}":
            assert page.locator("#order-cancel").count() == 1
    assert n >= 100  # the checks saw the pages' controls
