"""导航 and a position's card: hand-off links in each app's datum, our own route, the card.

The links are checked the way the other apps read them: parsed back out of the URL, the
destination moved back to WGS84 lands within a metre of the stored position, and the shift
in Taiyuan is the few hundred metres GCJ-02 is known for. The card is read over the API on
both databases, with a team, activities (coming, cancelled, ended) and a closed position.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import update

import geo
from api.services.cards import tel_uri
from api.services.navigation import (
    AMAP_NAVIGATION,
    BAIDU_DIRECTION,
    NoRouteError,
    links,
    route_to,
)
from api.services.nearest import nearest_positions
from api.storage.models import Activity, Position
from api.storage.registry import bump_version
from api.storage.session import session_maker
from geo.categories import category
from geo.datum import Crs, from_wgs84, to_wgs84
from tests.api.dispatch.helpers import Actors
from tests.api.helpers import problem

GEOD = Geod(ellps="WGS84")
TAIYUAN = (112.5617, 37.8006)  # a street in the served part of 小店区 (WGS84)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def amap_to(url: str) -> tuple[float, float, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AMAP_NAVIGATION
    q = parse_qs(parts.query, strict_parsing=True)
    assert q["mode"] == ["walk"] and q["coordinate"] == ["gaode"] and q["callnative"] == ["1"]
    assert q["src"] == ["practice-circle"]
    lon, lat, name = q["to"][0].split(",")
    return float(lon), float(lat), name


def baidu_destination(url: str) -> tuple[float, float, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BAIDU_DIRECTION
    q = parse_qs(parts.query, strict_parsing=True)
    assert q["mode"] == ["walking"] and q["coord_type"] == ["bd09ll"]
    assert q["output"] == ["html"] and q["src"][0].startswith("webapp.")
    latlng, name = q["destination"][0].split("|")
    lat, lon = latlng.removeprefix("latlng:").split(",")
    return float(lon), float(lat), name.removeprefix("name:")


# ------------------------------------------------------------------------------ the links


def test_links_carry_the_destination_in_each_apps_datum() -> None:
    nav = links(*TAIYUAN, name="八一小学")
    glon, glat, gname = amap_to(nav["amap"])
    blon, blat, bname = baidu_destination(nav["baidu"])
    assert gname == bname == "八一小学"
    assert [glon, glat] == nav["gcj02"] and [blon, blat] == nav["bd09"]
    # Back to WGS84, each lands within a metre of where the position is stored.
    assert metres(to_wgs84(glon, glat, crs=Crs.GCJ02), TAIYUAN) < 1.0
    assert metres(to_wgs84(blon, blat, crs=Crs.BD09), TAIYUAN) < 1.0
    # Unconverted they would be off by the known shift: GCJ-02 ≈ 560 m east here, BD-09 more.
    shift_gcj = metres((glon, glat), TAIYUAN)
    shift_bd = metres((blon, blat), TAIYUAN)
    assert 400 < shift_gcj < 800 and glon > TAIYUAN[0]
    assert 900 < shift_bd < 1800
    assert nav["gcj02"] == pytest.approx(from_wgs84(*TAIYUAN, crs=Crs.GCJ02), abs=1e-6)


def test_names_are_encoded_and_cannot_break_the_link() -> None:
    nav = links(*TAIYUAN, name="A&B|C,D:E #1 小区", origin=(112.56, 37.80), region="小店区")
    _, _, gname = amap_to(nav["amap"])
    _, _, bname = baidu_destination(nav["baidu"])
    assert gname == bname == "A B C D E 1 小区"
    assert quote("小区") in nav["amap"] and "小区" not in nav["amap"]  # UTF-8, percent-encoded
    q = parse_qs(urlsplit(nav["baidu"]).query)
    assert q["region"] == ["小店区"]
    olatlng, oname = q["origin"][0].split("|")
    olat, olon = map(float, olatlng.removeprefix("latlng:").split(","))
    assert metres(to_wgs84(olon, olat, crs=Crs.BD09), (112.56, 37.80)) < 1.0
    assert oname == "name:我的位置"
    olon, olat, _ = parse_qs(urlsplit(nav["amap"]).query)["from"][0].split(",")
    assert metres(to_wgs84(float(olon), float(olat), crs=Crs.GCJ02), (112.56, 37.80)) < 1.0


def test_tel_uri() -> None:
    assert tel_uri("0351-123 4567") == "tel:03511234567"
    assert tel_uri("+86 (351) 1234567") == "tel:+863511234567"
    assert tel_uri("") is None and tel_uri(None) is None and tel_uri("--") is None


# ------------------------------------------------------------------------------ the card


@pytest.fixture
def site(db: str, district: geo.District) -> Iterator[str]:
    """A position given an address, phone and hours for the test; put back afterwards."""
    sid = str(district.positions.loc[district.positions["level"] == "community",
                                     "site_id"].iloc[0])
    fields = {"address": "坞城路92号", "phone": "0351-7010 123",
              "opening_hours": "周一至周五 9:00-17:00"}
    with session_maker(db)() as s:
        s.execute(update(Position).where(Position.site_id == sid).values(**fields))
        bump_version(s, district.name)
        s.commit()
    yield sid
    with session_maker(db)() as s:
        s.execute(update(Position).where(Position.site_id == sid).values(
            address=None, phone=None, opening_hours=None, active=True))
        bump_version(s, district.name)
        s.commit()


def _activity(site_id: str, title: str, hours_ahead: float) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=hours_ahead)
    return {"title": title, "category": "health", "site_id": site_id,
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
            "capacity": 10}


def test_the_card_of_a_position(
    client: TestClient, actors: Actors, db: str, site: str, district: geo.District,
) -> None:
    team = actors.new_team("health,elderly", site_id=site)
    actors.new_team("legal", site_id=site, active=False)  # inactive: not on the card
    admin = actors.user("admin")
    made = {}
    for title, hours in [("第七场", 24 * 7), ("已结束", -5), ("取消的", 2), ("第一场", 1),
                         ("第三场", 30), ("第二场", 5), ("第五场", 72), ("第四场", 48),
                         ("进行中", -1)]:
        r = client.post("/activities", headers=admin, json=_activity(site, title, hours))
        assert r.status_code == 201, r.text
        made[title] = r.json()["id"]
    with session_maker(db)() as s:
        s.execute(update(Activity).where(Activity.id == made["取消的"]).values(cancelled=True))
        s.commit()

    r = client.get(f"/positions/{quote(site)}/card")
    assert r.status_code == 200, r.text
    card = r.json()
    row = district.positions.set_index("site_id").loc[site]
    assert card["site_id"] == site and card["name"] == row["name"]
    assert card["level"] == "community" and card["level_zh"] == row["level_zh"]
    assert card["address"] == "坞城路92号" and card["opening_hours"] == "周一至周五 9:00-17:00"
    assert card["phone"] == "0351-7010 123" and card["phone_tel"] == "tel:03517010123"
    assert card["demo"] is True
    assert (card["lon"], card["lat"]) == pytest.approx((row.geometry.x, row.geometry.y))
    teams = {t["team_id"]: t for t in card["teams"]}
    assert team in teams and len([t for t in teams if t.startswith("test-")]) == 1
    assert teams[team]["categories"] == [{"code": c, "name": category(c).name}
                                         for c in ("health", "elderly")]
    # Coming activities only (one under way counts), soonest first, five at most.
    titles = [a["title"] for a in card["activities"]]
    assert titles == ["进行中", "第一场", "第二场", "第三场", "第四场"]
    first = card["activities"][1]
    assert first["capacity"] == 10 and first["confirmed"] == 0 and first["spaces_left"] == 10
    assert first["category_name"]
    nav = card["navigation"]
    glon, glat, gname = amap_to(nav["amap"])
    assert gname == row["name"]
    assert metres(to_wgs84(glon, glat, crs=Crs.GCJ02), (card["lon"], card["lat"])) < 1.0
    blon, blat, _ = baidu_destination(nav["baidu"])
    assert metres(to_wgs84(blon, blat, crs=Crs.BD09), (card["lon"], card["lat"])) < 1.0

    # Closed or unknown: 404 problem, for the public.
    with session_maker(db)() as s:
        s.execute(update(Position).where(Position.site_id == site).values(active=False))
        bump_version(s, district.name)
        s.commit()
    problem(client.get(f"/positions/{quote(site)}/card"), 404, "not_found")
    problem(client.get("/positions/没有这个阵地/card"), 404, "not_found")


def test_our_route_to_one_position_is_the_nearest_route(
    client: TestClient, district: geo.District
) -> None:
    lon, lat = TAIYUAN
    near = client.get("/nearest", params={"lon": lon, "lat": lat, "limit": 3}).json()
    third = near["features"][2]
    sid = third["properties"]["site_id"]
    r = client.get(f"/positions/{quote(sid)}/route", params={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.text
    [feature] = r.json()["features"]
    assert feature == third  # the same feature, rank 3 included
    assert r.json()["properties"] == {**near["properties"], "count": 1}
    problem(client.get("/positions/没有这个阵地/route", params={"lon": lon, "lat": lat}),
            404, "not_found")
    problem(client.get(f"/positions/{quote(sid)}/route", params={"lon": 20, "lat": 0}),
            422, "out_of_area")


def test_route_to_draws_one_route_and_it_is_the_nearest_answers(district: geo.District) -> None:
    """For every position: the one-position walk gives the feature the full ranking holds."""
    lon, lat = TAIYUAN
    ranked = nearest_positions(district, lon, lat, limit=len(district.positions))
    by_site = {f["properties"]["site_id"]: f for f in ranked["features"]}
    assert len(by_site) > 3
    ids = district.positions["site_id"].astype(str).tolist()
    for sid in ids:
        if sid not in by_site:  # not reachable on foot from here
            with pytest.raises(NoRouteError):
                route_to(district, sid, lon, lat)
            continue
        one = route_to(district, sid, lon, lat)
        assert one["features"] == [by_site[sid]], sid
        assert one["properties"] == {**ranked["properties"], "count": 1}
    # The filter with a category: ranks among the positions offering it.
    legal = nearest_positions(district, lon, lat, limit=len(ids), category_code="legal")
    last = legal["features"][-1]
    only = nearest_positions(district, lon, lat, category_code="legal",
                             site_id=last["properties"]["site_id"])
    assert only["features"] == [last] and last["properties"]["rank"] == len(legal["features"])
    offers_none = next((sid for sid in by_site
                        if sid not in {f["properties"]["site_id"] for f in legal["features"]}),
                       None)
    if offers_none is not None:
        assert nearest_positions(district, lon, lat, category_code="legal",
                                 site_id=offers_none)["features"] == []
