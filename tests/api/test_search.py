"""Search: positions by name, pinyin (全拼, 首字母) and address, ranked, one row per position."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import geo
from api.services.search import search_positions
from api.storage.models import Position
from api.storage.registry import bump_version
from api.storage.session import session_maker
from tests.api.helpers import problem


def names(district: geo.District, q: str, limit: int = 20) -> list[str]:
    return [i["name"] for i in search_positions(district, q, limit=limit)["items"]]


@pytest.mark.parametrize("q", ["太嘉", "tjxq", "TJXQ", "ｔｊｘｑ", "taijia", "tai jia xiao",
                               "Taijiaxiaoqu"])
def test_name_and_pinyin_find_the_position(district: geo.District, q: str) -> None:
    assert names(district, q)[0] == "太嘉小区"


def test_ranking_exact_then_prefix_then_part(district: geo.District) -> None:
    found = search_positions(district, "山西大学", limit=20)["items"]
    assert found[0]["name"] == "山西大学" and found[0]["matched"] == "name"
    starts = [i["name"].startswith("山西大学") for i in found]
    assert starts == sorted(starts, reverse=True)  # every prefix match before any other
    # pinyin initials: sxdx is the start of 山西大学… and of 山西大学附属… (names first)
    by_initials = names(district, "sxdx")
    assert by_initials[0] == "山西大学"
    assert all(n.startswith("山西大学") for n in by_initials)


def test_one_row_per_position_and_namesakes_told_apart(district: geo.District) -> None:
    found = search_positions(district, "八一", limit=20)["items"]
    assert [i["name"] for i in found] == ["八一小学", "八一小学"]
    assert len({i["site_id"] for i in found}) == 2  # two places, not a repeated row
    assert found[0]["parent_name"] != found[1]["parent_name"]
    # a query matching a position in several ways still gives it one row
    for q in ("小区", "xq", "s", "学"):
        everything = search_positions(district, q, limit=20)
        ids = [i["site_id"] for i in everything["items"]]
        assert len(ids) == len(set(ids)), q
    total = search_positions(district, "s", limit=3)
    assert len(total["items"]) == 3 and total["total"] > 3


def test_nothing_found(district: geo.District) -> None:
    assert search_positions(district, "没有这样的地方")["items"] == []
    assert search_positions(district, "zzzzq")["items"] == []


def test_search_over_the_api_follows_the_registry(
    client: TestClient, db: str, district: geo.District
) -> None:
    r = client.get("/search", params={"q": "tjxq"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"][0]["name"] == "太嘉小区" and body["items"][0]["matched"] == "pinyin"
    hit = body["items"][0]
    assert set(hit) == {"site_id", "name", "level", "level_zh", "address", "parent_name", "lon",
                        "lat", "matched"}
    # an address given in the registry is found at once (a new registry version)
    sid = hit["site_id"]
    with session_maker(db)() as s:
        s.execute(update(Position).where(Position.site_id == sid).values(address="晋阳街166号"))
        bump_version(s, district.name)
        s.commit()
    try:
        found = client.get("/search", params={"q": "晋阳街166"}).json()["items"]
        assert [(i["site_id"], i["matched"], i["address"]) for i in found] == [
            (sid, "address", "晋阳街166号")]
        card = client.get(f"/positions/{quote(sid)}/card").json()
        assert card["address"] == "晋阳街166号"
    finally:
        with session_maker(db)() as s:
            s.execute(update(Position).where(Position.site_id == sid).values(address=None))
            bump_version(s, district.name)
            s.commit()
    assert client.get("/search", params={"q": "晋阳街166"}).json()["items"] == []


@pytest.mark.parametrize("params", [{"q": ""}, {"q": " " * 3}, {"q": "字" * 41}, {},
                                    {"q": "a", "limit": 0}, {"q": "a", "limit": 21}])
def test_bounds(client: TestClient, params: dict[str, object]) -> None:
    problem(client.get("/search", params=params), 422, "invalid_request")
