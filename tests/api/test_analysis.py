"""One analysis per district: an edit recomputes what the registry gives, keeps what OSM gives."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

import geo
from api.served import ServedDistricts
from api.services import planning, registry
from api.services.analysis import Kept, analysis_for, analysis_of
from api.services.coverage import cell_points, district_coverage
from api.services.map_data import basemap_body, page_body, sites_body
from api.services.matching import position_walk
from api.services.nearest import nearest_positions
from api.storage.seed import prepare_database
from api.storage.session import session_maker
from geo.coverage import attach_positions
from geo.siting import siting_candidates

ACTOR = "测试管理员"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, district: geo.District) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('analysis') / 'practice.db'}"
    prepare_database(url, district)
    return url


@pytest.fixture(scope="module")
def served(db_url: str, district: geo.District, cache_dir: Path) -> ServedDistricts:
    return ServedDistricts({district.name: district}, db_url)


def far_place(district: geo.District) -> tuple[str, float, float]:
    """The free OSM place farthest from every position (so it becomes some nodes' nearest)."""
    free = siting_candidates(district)
    metric = district.network.crs_metric
    taken = district.positions.geometry.to_crs(metric)
    away = free.geometry.to_crs(metric).apply(lambda p: float(taken.distance(p).min()))
    best = free.loc[away.idxmax()]
    return str(best["label"]), float(best["lon"]), float(best["lat"])


def test_an_edit_recomputes_the_registry_part_and_keeps_the_osm_part(
    served: ServedDistricts, db_url: str
) -> None:
    before = served.current()
    a0 = served.analysis()
    assert a0 is analysis_of(before) and a0.version == before.registry_version
    cov0 = planning.planning_coverage(before)
    assert planning.planning_coverage(before) is cov0  # kept
    assert district_coverage(before) is cov0  # one result for the map, the CLI and the API
    wheel0 = planning.profile_network(before, "wheelchair")
    demand0 = planning.demand(before)
    points0 = cell_points(before)
    basemap0, page0, sites0 = basemap_body(before), page_body(before), sites_body(before)
    walk0 = position_walk(before)
    name, lon, lat = far_place(before)
    near0 = nearest_positions(before, lon, lat, limit=1)

    with session_maker(db_url)() as s:
        row = registry.create_position(
            s, before, {"level": "site", "name": f"{name}新时代文明实践点", "lon": lon,
                        "lat": lat, "categories": ["elderly"]}, actor=ACTOR)
        s.commit()
        sid = row.site_id

    after = served.current()
    a1 = served.analysis()
    assert after.registry_version > before.registry_version
    assert a1 is not a0 and a1.osm is a0.osm and a1.district is after

    # What OSM gives is the same object after the edit.
    assert after.network is before.network
    assert planning.profile_network(after, "wheelchair") is wheel0
    assert planning.demand(after) is demand0
    assert cell_points(after) is points0
    assert basemap_body(after) is basemap0

    # What the registry gives is computed again, and is what a fresh computation gives.
    cov1 = planning.planning_coverage(after)
    assert cov1 is not cov0
    fresh = geo.coverage(after.network, after.positions, after.cells,
                         inside=after.nodes["inside"].to_numpy(),
                         cell_points=geo.resident_points(after))
    pd.testing.assert_frame_equal(cov1.nodes, fresh.nodes)
    pd.testing.assert_frame_equal(cov1.cells, fresh.cells)
    assert (cov1.nodes["nearest_site"] == sid).any()
    assert not (cov0.nodes["nearest_site"] == sid).any()
    page1, sites1 = page_body(after), sites_body(after)
    assert page1.etag != page0.etag and sites1.etag != sites0.etag
    assert sid.encode() in sites1.raw and sid.encode() not in sites0.raw
    near1 = nearest_positions(after, lon, lat, limit=1)
    assert near1["features"][0]["properties"]["site_id"] == sid
    assert near0["features"][0]["properties"]["site_id"] != sid
    walk1 = position_walk(after)
    assert walk1 is not walk0 and sid in walk1.row and sid not in walk0.row

    # A request that began on the previous version finishes on it.
    assert planning.planning_coverage(before) is cov0
    assert position_walk(before) is walk0


def test_only_the_current_and_previous_versions_are_kept(
    served: ServedDistricts, db_url: str
) -> None:
    site_id = str(served.current().positions["site_id"].iloc[0])
    versions, kept = [], []
    for i in range(3):
        with session_maker(db_url)() as s:
            registry.update_position(s, served.current(), site_id, {"name": f"测试实践站{i}"},
                                     actor=ACTOR)
            s.commit()
        district = served.current()
        district_coverage(district)  # something to hold on to
        versions.append(district.registry_version)
        kept.append(weakref.ref(served.analysis()))
    assert len(set(versions)) == 3
    gc.collect()
    assert analysis_for(district).versions == versions[-2:]
    assert kept[0]() is None  # dropped with its coverage
    assert kept[1]() is not None and kept[2]() is not None


def test_kept_results_are_made_once_and_bounded() -> None:
    kept = Kept(size=2)
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def make(key: str) -> object:
        with lock:
            calls[key] += 1
        time.sleep(0.05)  # long enough for every thread to ask meanwhile
        return object()

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: kept.get("a", lambda: make("a")), range(8)))
    assert calls["a"] == 1 and all(g is got[0] for g in got)

    kept.get("b", lambda: make("b"))
    assert kept.get("a", lambda: make("a")) is got[0]  # "a" is now the most recently used
    kept.get("c", lambda: make("c"))
    assert len(kept) == 2 and "a" in kept and "c" in kept and "b" not in kept

    def fail() -> object:
        msg = "not kept"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="not kept"):
        kept.get("d", fail)
    assert "d" not in kept
    assert kept.get("d", lambda: make("d")) is kept.get("d", fail)


def test_positions_are_snapped_once_per_set_of_coordinates(district: geo.District) -> None:
    net, pos = district.network, district.positions
    first = attach_positions(net, pos)
    assert attach_positions(net, pos.copy()) is first  # the same registry, another snapshot
    geom = pos.geometry
    direct = net.attach(geom.x.to_numpy(), geom.y.to_numpy())
    for got, want in zip((first.edge, first.offset_m, first.access_m),
                         (direct.edge, direct.offset_m, direct.access_m), strict=True):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable  # shared by every caller

    moved = pos.copy()
    p = moved.geometry.iloc[0]
    moved.loc[moved.index[0], "geometry"] = Point(p.x + 0.003, p.y)
    again = attach_positions(net, moved)
    assert again is not first
    redo = net.attach(moved.geometry.x.to_numpy(), moved.geometry.y.to_numpy())
    np.testing.assert_array_equal(again.offset_m, redo.offset_m)
    np.testing.assert_array_equal(again.access_m, redo.access_m)
    assert (again.edge[0], again.offset_m[0]) != (first.edge[0], first.offset_m[0])
