"""Nearest teams by walking on the street network, checked against networkx."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

import geo
from tests.api.dispatch.helpers import HOME, Actors


def _attach(district: geo.District, edges_m: gpd.GeoSeries, lon: float, lat: float
            ) -> tuple[int, float, float, int]:
    """Nearest edge by brute force: (edge row, metres from u along it, access metres, row)."""
    crs = district.meta["crs_metric"]
    p = gpd.GeoSeries([Point(lon, lat)], crs="EPSG:4326").to_crs(crs).iloc[0]
    dist = edges_m.distance(p).to_numpy()
    i = int(np.argmin(dist))
    line = edges_m.iloc[i]
    frac = line.project(p, normalized=True)
    nodes_m = gpd.GeoSeries(district.nodes.geometry, crs="EPSG:4326").to_crs(crs)
    e = district.edges.iloc[i]
    start = Point(line.coords[0])
    if start.distance(nodes_m.loc[e["u"]]) > start.distance(nodes_m.loc[e["v"]]):
        frac = 1 - frac
    return i, frac * float(e["length"]), float(dist[i]), i


def networkx_walk_m(district: geo.District, a: tuple[float, float], b: tuple[float, float]
                    ) -> float:
    """Shortest walk between two points, each joined to its nearest street, with networkx."""
    G = nx.Graph()
    for u, v, length in zip(district.edges["u"], district.edges["v"], district.edges["length"],
                            strict=True):
        if not G.has_edge(u, v) or G[u][v]["w"] > length:
            G.add_edge(u, v, w=float(length))
    edges_m = district.edges.geometry.to_crs(district.meta["crs_metric"])
    ends = {}
    for name, (lon, lat) in (("A", a), ("B", b)):
        i, off, acc, _ = _attach(district, edges_m, lon, lat)
        e = district.edges.iloc[i]
        G.add_edge(name, e["u"], w=acc + off)
        G.add_edge(name + "'", e["v"], w=acc + float(e["length"]) - off)
        G.add_edge(name, name + "'", w=0.0)
        ends[name] = (i, off, acc)
    if ends["A"][0] == ends["B"][0]:  # same street: straight along it
        G.add_edge("A", "B", w=abs(ends["A"][1] - ends["B"][1]) + ends["A"][2] + ends["B"][2])
    return float(nx.dijkstra_path_length(G, "A", "B", weight="w"))


def nearest(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/teams/nearest", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_walk_minutes_equal_networkx(client: TestClient, district: geo.District) -> None:
    cells = district.cells.sort_values("cell_id")
    points = [HOME, *zip(cells["lon"].iloc[[10, 200]], cells["lat"].iloc[[10, 200]], strict=True)]
    sites = district.positions.set_index("site_id").geometry
    metric = district.meta["crs_metric"]
    checked, detours = 0, []
    for lon, lat in points:
        body = nearest(client, lon=float(lon), lat=float(lat), category="health", limit=200)
        teams = body["teams"]
        # Teams that can take the request first, each group nearest first.
        eligible = [t["eligible"] for t in teams]
        assert eligible == sorted(eligible, reverse=True)
        for group in (True, False):
            walks = [t["walk_m"] for t in teams if t["eligible"] is group]
            assert walks and walks == sorted(walks)
        assert len(teams) == len(district.teams)
        by_site = {t["site_id"]: t for t in teams}
        # The nearest, a middle and the farthest position.
        for site_id in (teams[0]["site_id"], teams[len(teams) // 2]["site_id"],
                        teams[-1]["site_id"]):
            site = sites.loc[site_id]
            expected = networkx_walk_m(district, (float(lon), float(lat)), (site.x, site.y))
            ends = gpd.GeoSeries([Point(lon, lat), site], crs="EPSG:4326").to_crs(metric)
            straight = float(ends.iloc[0].distance(ends.iloc[1]))
            assert expected >= straight - 1.0
            detours.append(expected / max(straight, 1.0))
            assert by_site[site_id]["walk_m"] == pytest.approx(expected, abs=0.5)
            assert by_site[site_id]["walk_minutes"] == pytest.approx(
                expected / geo.DEFAULT_WALK_M_PER_MIN, abs=0.01)
            checked += 1
    assert checked == 9
    assert max(detours) > 1.1  # streets, not straight lines


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reasons_and_filters(client: TestClient, district: geo.District, actors: Actors) -> None:
    body = nearest(client, lon=HOME[0], lat=HOME[1], category="elderly", limit=200)
    assert body["considered"] == len(district.teams) and body["access_m"] < 500
    for t in body["teams"]:
        assert t["eligible"] == (t["reasons"] == [])
        assert ("category" in t["reasons"]) == ("elderly" not in t["categories"])
        assert ("inactive" in t["reasons"]) == (not t["active"])
    inactive = district.teams.query("not active")["team_id"]
    assert {t["team_id"] for t in body["teams"] if "inactive" in t["reasons"]} == set(inactive)
    assert all(len(t["reasons"]) == len(t["reasons_zh"]) for t in body["teams"])

    only = nearest(client, lon=HOME[0], lat=HOME[1], category="elderly", eligible_only=True)
    assert only["teams"] and all(t["eligible"] for t in only["teams"])
    assert only["teams"][0]["team_id"] == next(
        t["team_id"] for t in body["teams"] if t["eligible"])
    assert len(nearest(client, lon=HOME[0], lat=HOME[1], category="elderly", limit=3)["teams"]) == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_errors(client: TestClient) -> None:
    r = client.get("/teams/nearest", params={"lon": 112.0, "lat": 37.0, "category": "health"})
    assert r.status_code == 422 and r.json()["code"] == "out_of_area"
    r = client.get("/teams/nearest", params={"lon": HOME[0], "lat": HOME[1], "category": "x"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"
    r = client.get("/teams/nearest", params={"lon": 200, "lat": HOME[1], "category": "health"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
