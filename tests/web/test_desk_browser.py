"""The dispatcher's workbench (/desk/) in a real browser (Debian's chromium), real server.

A uvicorn subprocess on 127.0.0.1 with its own SQLite database and the session's built
district; its escalation thread runs every second, with a 3-second SLA for legal help so an
order climbs 站 → 所 → 中心 while the test watches. The dispatcher signs in with a phone and
the one-time code the server logs, sees the queue with SLA timers, dispatches to the suggested
nearest team, rejects an order with a reason the resident then reads, reads an escalation in
the history and merges a duplicate. Every request the page makes stays on 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import geo
from api.services.accounts import create_user
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from tests.web.helpers import ARTIFACTS, DESKTOP, Server, run_server

pytestmark = pytest.mark.browser

DISPATCHER_PHONE = "13800138000"
HOME = (112.5501, 37.8024)
NEAR_A = (112.539897, 37.812510)
NEAR_B = (112.541180, 37.812254)
FAR_C = (112.600944, 37.796039)
EVIL = "<img src=x onerror=alert(1)>"


@dataclass
class Desk:
    server: Server
    resident: dict[str, str]
    orders: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base

    def code(self, after: int) -> str:
        """The one-time code the server logged for the dispatcher's phone (after ``after``)."""
        return self.server.code_for(DISPATCHER_PHONE, after)

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.base + path, params=params, headers=self.resident, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def desk(cache_dir: Path, district: geo.District,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """A real server with a dispatcher (by phone), a resident and five orders."""
    tokens: dict[str, str] = {}

    def seed(url: str) -> None:
        # In this process, before the server starts: the phone's hash needs the cache's key.
        prepare_database(url, district)
        with session_maker(url)() as s:
            create_user(s, role="dispatcher", name="调度员小王", phone=DISPATCHER_PHONE)
            _, tokens["resident"] = create_user(s, role="resident", name="居民老李")
            s.commit()

    env = {"PRACTICE_CIRCLE_ESCALATION_POLL_S": "1",
           "PRACTICE_CIRCLE_SLA_MINUTES": '{"*": 120, "elderly": 60, "legal": 0.05}'}
    with run_server(cache_dir, tmp_path_factory.mktemp("desk-browser"), copy_cache=False,
                    env=env, before=seed) as srv:
        resident = {"Authorization": f"Bearer {tokens['resident']}"}
        d = Desk(srv, resident)
        for name, category, at, text in (
            ("dispatch", "elderly", HOME, "帮忙代购一周的药品 " + EVIL),
            ("dup_a", "elderly", NEAR_A, "老人独居，需要上门陪伴"),
            ("dup_b", "elderly", NEAR_B, "同一位老人，邻居也报了"),
            ("late", "legal", HOME, "咨询遗嘱公证"),
            ("reject", "legal", FAR_C, "想请志愿者帮忙打官司"),
        ):
            r = httpx.post(srv.base + "/requests", headers=resident, timeout=30, json={
                "lon": at[0], "lat": at[1], "category": category, "description": text,
                "contact": "13912345678"})
            assert r.status_code == 201, r.text
            d.orders[name] = r.json()["id"]
        yield d


def test_workbench_sign_in_dispatch_reject_escalate_merge(desk: Desk, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN",
                              timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    o = desk.orders
    try:
        page.goto(desk.base + "/desk/")
        # Sign in with the phone and the one-time code (the server logs it: no SMS gateway).
        page.wait_for_selector("#desk-signin:not([hidden])")
        page.fill("#signin-phone", DISPATCHER_PHONE)
        offset = desk.server.log_size()
        page.click("#signin-send")
        page.fill("#signin-code", desk.code(offset))
        page.click("#signin-submit")
        page.wait_for_selector(f"[data-testid=order-{o['dispatch']}]")
        assert "调度员小王" in page.text_content("[data-testid=desk-user]")

        # The queued order with its SLA countdown, ticking; the description is text, not HTML.
        card = f"[data-testid=order-{o['dispatch']}]"
        sla = page.locator(f"[data-testid=sla-{o['dispatch']}]")
        first = sla.text_content() or ""
        assert re.fullmatch(r"剩余 (59|60):\d\d", first), first
        page.wait_for_function(
            "([sel, was]) => document.querySelector(sel).textContent !== was",
            arg=[f"[data-testid=sla-{o['dispatch']}]", first], timeout=5000)
        assert EVIL in (page.text_content(f"{card} .d-desc") or "")
        assert page.locator(f"{card} img").count() == 0
        assert page.locator(f"[data-testid=group-submitted] {card}").count() == 1

        # Duplicates flagged, by walking (a 230 m walk), with a merge button.
        dups = page.text_content(f"[data-testid=dups-{o['dup_a']}]") or ""
        assert f"#{o['dup_b']}" in dups and "疑似重复" in dups
        assert page.locator(f"[data-testid=dups-{o['late']}]").count() == 0

        # 派单: the nearest capable team by walking is suggested first; dispatch to it.
        nearest = httpx.get(desk.base + "/teams/nearest", params={
            "lon": HOME[0], "lat": HOME[1], "category": "elderly", "eligible_only": "true"},
            timeout=30).json()["teams"][0]
        page.click(f"[data-testid=dispatch-{o['dispatch']}]")
        page.wait_for_selector("[data-testid=suggestions] .d-suggested")
        suggested = page.locator("[data-testid=suggestions] .d-suggested button")
        assert suggested.get_attribute("data-team") == nearest["team_id"]
        suggested.click()
        page.wait_for_selector(f"[data-testid=group-dispatched] {card}")
        seen = desk.get(f"/requests/{o['dispatch']}")
        assert seen["state"] == "dispatched" and seen["team"]["team_id"] == nearest["team_id"]
        page.wait_for_selector("#history li[data-action=dispatch]")

        # 改派: the team holding it is not offered again; the next nearest is suggested.
        page.click(f"[data-testid=redispatch-{o['dispatch']}]")
        page.wait_for_selector("[data-testid=suggestions] .d-suggested")
        offered = page.locator("[data-testid=suggestions] button[data-team]")
        teams = [offered.nth(i).get_attribute("data-team") for i in range(offered.count())]
        assert teams and nearest["team_id"] not in teams
        page.click("[data-testid=suggestions] .d-suggested button")
        page.wait_for_selector("#history li[data-action=redispatch]")
        seen = desk.get(f"/requests/{o['dispatch']}")
        assert seen["team"]["team_id"] == teams[0] and seen["round"] == 1

        # 驳回 with a reason (a dialog); the resident reads it.
        reason = "不属于志愿服务范围，请拨打 12348 法律援助热线"
        page.click(f"[data-testid=reject-{o['reject']}]")
        page.wait_for_selector("#reject-dialog[open]")
        page.fill("#reject-reason", reason)
        page.click("#reject-confirm")
        page.wait_for_selector(f"[data-testid=order-{o['reject']}]", state="detached")
        seen = desk.get(f"/requests/{o['reject']}")
        assert seen["state"] == "rejected" and seen["reject_reason"] == reason

        # The server's escalation thread moved the legal order up while we worked (3 s SLA).
        deadline = time.monotonic() + 30
        while desk.get(f"/requests/{o['late']}")["level"] != "center":
            assert time.monotonic() < deadline, "the order was not escalated to the 中心"
            time.sleep(0.5)
        page.click("#desk-refresh")
        late = f"[data-testid=order-{o['late']}]"
        # At the 中心 its clock restarted; 3 s later it is overdue there for good (nothing above).
        page.wait_for_function(
            "(sel) => { const c = document.querySelector(sel);"
            " return c && c.querySelector('.d-meta').textContent.includes('（中心）')"
            " && c.classList.contains('d-overdue')"
            " && c.querySelector('.d-sla').textContent.startsWith('超时'); }",
            arg=late, timeout=15000)
        assert page.text_content("[data-testid=summary-overdue]") == "1"
        page.click(f"[data-testid=history-{o['late']}]")
        page.wait_for_selector("#history li[data-action=escalate]")
        steps = page.locator("#history li[data-action=escalate]")
        assert steps.count() == 2
        assert "超时未派单，自动升级" in (steps.nth(0).text_content() or "")
        assert "系统自动" in (steps.nth(1).text_content() or "")

        ARTIFACTS.mkdir(exist_ok=True)
        # a function, not an expression: the page's CSP forbids eval, which an expression needs
        page.evaluate("() => { document.getElementById('queue').scrollTop = 0; }")
        page.screenshot(path=str(ARTIFACTS / "desk.png"))

        # 合并: the duplicate joins the other order; its resident sees which.
        page.once("dialog", lambda d: d.accept())
        page.click(f"[data-testid=merge-{o['dup_b']}-{o['dup_a']}]")
        page.wait_for_selector(f"[data-testid=order-{o['dup_b']}]", state="detached")
        seen = desk.get(f"/requests/{o['dup_b']}")
        assert seen["state"] == "merged" and seen["merged_into"] == o["dup_a"]

        assert errors == [], (errors, failed)
        outside = [u for u in requests if not u.startswith(desk.base)]
        assert outside == [], outside
    finally:
        ctx.close()
