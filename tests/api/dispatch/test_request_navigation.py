"""An order's 导航 links: only for those who see its contact (dispatcher, the assigned team).

The links are read back the way the other apps read them: the destination parsed out of the
Amap URL is the order's place moved to GCJ-02, whatever datum the answer's ``lon``/``lat`` use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from geo.datum import Crs, from_wgs84
from tests.api.dispatch.helpers import HOME, Actors, new_request
from tests.api.helpers import new_volunteer


def _amap_to(nav: dict[str, Any]) -> tuple[float, float, str]:
    lon, lat, name = parse_qs(urlsplit(nav["amap"]).query)["to"][0].split(",")
    return float(lon), float(lat), name


def test_navigation_only_with_the_contact(client: TestClient, actors: Actors) -> None:
    resident, dispatcher, admin = actors.resident(), actors.dispatcher(), actors.user("admin")
    team_id = actors.new_team("elderly", capacity=5)
    team, other_team = actors.team(team_id), actors.team(actors.new_team("elderly"))
    leader_id, leader = new_volunteer(client, "队长")
    assert client.post(f"/teams/{team_id}/members", headers=admin,
                       json={"volunteer_id": leader_id, "leader": True}).status_code == 201

    made = client.post("/requests", json=new_request(), headers=resident).json()
    rid = made["id"]
    assert made["navigation"] is None and made["contact_masked"] is True
    assert client.get(f"/requests/{rid}", headers=resident).json()["navigation"] is None

    seen = client.get(f"/requests/{rid}", headers=dispatcher).json()
    nav = seen["navigation"]
    assert nav is not None and seen["contact_masked"] is False
    glon, glat = from_wgs84(HOME[0], HOME[1], crs=Crs.GCJ02)
    assert nav["gcj02"] == [round(float(glon), 6), round(float(glat), 6)]
    assert _amap_to(nav) == (*nav["gcj02"], f"服务地点（订单{rid}）")
    assert parse_qs(urlsplit(nav["baidu"]).query)["destination"][0].startswith(
        f"latlng:{nav['bd09'][1]},{nav['bd09'][0]}|name:服务地点（订单{rid}）")
    listed = client.get("/requests", headers=dispatcher).json()["items"]
    assert [i["navigation"] for i in listed if i["id"] == rid] == [nav]

    # Asked in GCJ-02, lon/lat move; the links already name each app's datum and stay.
    gcj = client.get(f"/requests/{rid}", params={"out_crs": "gcj02"}, headers=dispatcher).json()
    assert [gcj["lon"], gcj["lat"]] == nav["gcj02"] and gcj["navigation"] == nav

    assert client.post(f"/requests/{rid}/dispatch", headers=dispatcher,
                       json={"team_id": team_id}).status_code == 200
    for who in (team, leader):
        view = client.get(f"/requests/{rid}", headers=who).json()
        assert view["contact_masked"] is False and view["navigation"] == nav
    accepted = client.post(f"/requests/{rid}/accept", headers=team).json()
    assert accepted["navigation"] == nav  # an action's answer carries them too
    for who in (resident, admin):
        view = client.get(f"/requests/{rid}", headers=who).json()
        assert view["contact_masked"] is True and view["navigation"] is None
    assert client.get(f"/requests/{rid}", headers=other_team).status_code in (403, 404)
