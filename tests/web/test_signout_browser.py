"""Signing out ends the session on the server, and the desk signs in only staff (chromium).

A uvicorn subprocess on 127.0.0.1 with its own SQLite database and a dispatcher with a phone;
codes are read from the server log. On the phone page (/m/) and at the desk (/desk/), 退出
must make the token stop working on the server, not only forget it in the browser (a shared
family phone); a resident who tries the desk is refused without losing the phone's session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

import geo
from api.services.accounts import create_user
from api.storage.models import SignInCode
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from tests.web.helpers import DESKTOP, Phone, Server, run_server, sign_in

pytestmark = pytest.mark.browser

DISPATCHER = "13800138111"
RESIDENT = "13900139222"


@pytest.fixture(scope="module")
def server(cache_dir: Path, district: geo.District,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    def seed(url: str) -> None:
        prepare_database(url, district)
        with session_maker(url)() as s:
            create_user(s, role="dispatcher", name="调度员小赵", phone=DISPATCHER)
            s.commit()

    with run_server(cache_dir, tmp_path_factory.mktemp("signout"), copy_cache=False,
                    before=seed) as srv:
        yield srv


def status_of(server: Server, token: str) -> int:
    r = httpx.get(server.base + "/users/me", headers={"Authorization": f"Bearer {token}"},
                  timeout=30)
    return r.status_code


def desk_code(ph: Phone, server: Server, number: str) -> None:
    page = ph.page
    page.wait_for_selector("#desk-signin:not([hidden])")
    page.fill("#signin-phone", number)
    mark = server.log_size()
    page.click("#signin-send")
    page.fill("#signin-code", server.code_for(number, mark))
    page.click("#signin-submit")


def test_phone_sign_out_ends_the_token_and_the_desk_refuses_a_resident(
    phone: Callable[..., Phone], server: Server,
) -> None:
    ph = phone(None)
    sign_in(ph, server, RESIDENT)
    token = ph.token()
    assert token.startswith("pc_") and status_of(server, token) == 200
    # The resident tries the desk (a minute later: one code per number per minute): refused
    # by the server, the phone's session intact.
    with session_maker(server.db_url)() as s:
        s.execute(update(SignInCode).values(created_at=SignInCode.created_at
                                            - timedelta(seconds=61)))
        s.commit()
    desk = phone(None, "/desk/", viewport=DESKTOP)
    desk_code(desk, server, RESIDENT)
    desk.page.wait_for_function(
        "() => /不能使用派单工作台/.test(document.getElementById('signin-msg').textContent)")
    assert desk.page.is_hidden("#desk-main")
    assert status_of(server, token) == 200
    # 退出 on the phone: the server no longer takes the token.
    ph.page.click("#logout")
    ph.ready("login")
    assert ph.page.evaluate("() => localStorage.getItem('pc-token')") is None
    assert status_of(server, token) == 401


def test_desk_sign_out_ends_the_token(phone: Callable[..., Phone], server: Server) -> None:
    desk = phone(None, "/desk/", viewport=DESKTOP)
    desk_code(desk, server, DISPATCHER)
    desk.page.wait_for_selector("#desk-main:not([hidden])")
    token = desk.token()
    assert status_of(server, token) == 200
    desk.page.click("#desk-signout")
    desk.page.wait_for_selector("#desk-signin:not([hidden])")
    assert desk.page.evaluate("() => localStorage.getItem('pc-token')") is None
    assert status_of(server, token) == 401
