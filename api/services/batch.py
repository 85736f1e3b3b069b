"""Run ``build`` and ``coverage`` for many districts as Dask tasks and merge what they return.

Each district is one task. A task is given everything it needs as arguments (the cache directory
and the database URL in :class:`Storage`, the options): a worker may run in another process or on
another machine and reads no settings of its own. A task never raises: what goes wrong in one
district comes back as that district's :class:`DistrictResult` with its error, and the others go
on. The client merges the results into one table and, for coverage, one GeoPackage, written as
results arrive so the client holds one district's layers at a time.

SQLite: the database is migrated by one task before the districts start (SpatiaLite creates its
own tables on the first connection to a new file, which two processes must not do at once);
seeding a district then runs in a ``BEGIN IMMEDIATE`` transaction, so workers seeding different
districts queue for the write lock (see :mod:`api.storage.session`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from geo import District
from geo.district import (
    build_bundled_district,
    bundled_districts,
    cached_districts,
    get_district,
    save_district,
)

#: What a batch runs per district.
Task = Literal["build", "coverage"]
#: Seconds to wait for an existing scheduler to answer and to have a worker.
CONNECT_TIMEOUT_S = 30


class BatchError(RuntimeError):
    """The batch as a whole cannot run: no scheduler, no worker, no database."""


@dataclass(frozen=True)
class Storage:
    """Where a task finds the districts and their registries.

    Parameters
    ----------
    cache_dir
        Absolute path of the district cache, the same on every worker (a shared folder when the
        workers are on other machines).
    database_url
        The registry database every worker writes to and reads from (PostgreSQL when the workers
        are on several machines; SQLite only when they share the machine or its disk).
    """

    cache_dir: str
    database_url: str


@dataclass(frozen=True)
class CoverageOptions:
    """The options of ``practice-circle coverage`` that apply to every district of a batch."""

    minutes: float = 15.0
    walk_m_per_min: float | None = None
    profile_name: str = "standard"
    category_code: str | None = None
    by_category: bool = False
    extra_sites: str | None = None
    demand_file: str | None = None


@dataclass
class DistrictResult:
    """What one district's task returned: its summary, or the error that stopped it."""

    district: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: GeoPackage layers (coverage with layers asked for); dropped once merged.
    layers: dict[str, gpd.GeoDataFrame] | None = field(default=None, repr=False)
    seconds: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the district's task finished without an error."""
        return self.error is None


def known_districts(cache_dir: Path, *, with_bundled: bool = False) -> list[str]:
    """List the districts a batch runs: those in the cache, optionally every bundled one too.

    Parameters
    ----------
    cache_dir
        The district cache.
    with_bundled
        Also list the bundled districts not built yet (first, as ``districts`` lists them).
    """
    bundled = [b.name for b in bundled_districts()] if with_bundled else []
    return list(dict.fromkeys([*bundled, *cached_districts(cache_dir)]))


# ------------------------------------------------------------------------- per-district tasks


def prepare_storage(database_url: str) -> None:
    """Migrate the registry database to the newest revision (one task, before the districts)."""
    from api.storage.session import migrate

    migrate(database_url)


def district_with_registry(name: str, storage: Storage, *, progress: bool = False) -> District:
    """Load a district (building a bundled one on first use) joined with its registry.

    The registry is seeded with the demo one on first use, as ``coverage --district`` does.
    """
    from api.storage.registry import read_registry
    from api.storage.seed import is_current, prepare_database
    from api.storage.session import plain_session

    base = get_district(name, cache_dir=Path(storage.cache_dir), progress=progress)
    if not is_current(storage.database_url, base.name):
        prepare_database(storage.database_url, base)
    with plain_session(storage.database_url) as session:
        registry = read_registry(session, base.name)
    return base.with_registry(registry.positions, registry.teams, version=registry.version)


def build_one(
    name: str, storage: Storage, *, rebuild: bool = False, progress: bool = False
) -> dict[str, Any]:
    """Build (bundled) or load (imported) a district, cache it and seed its registry.

    Parameters
    ----------
    name
        A bundled district or one in the cache.
    storage
        Where the cache and the database are.
    rebuild
        Build a bundled district again even when it is cached.
    progress
        Show the build's progress bar.

    Returns
    -------
    dict
        The row of ``practice-circle build``: what was done and the district's counts.
    """
    cache_dir = Path(storage.cache_dir)
    bundled = name in {b.name for b in bundled_districts()}
    was_cached = name in cached_districts(cache_dir)
    if bundled and rebuild:
        save_district(build_bundled_district(name, progress=progress), cache_dir)
    d = district_with_registry(name, storage, progress=progress)
    return {
        "district": d.name,
        "source": "bundled" if bundled else "imported",
        "action": "built" if bundled and (rebuild or not was_cached) else "cached",
        "extract_share": round(float(d.meta["extract_share"]), 4),
        "nodes": int(d.meta["nodes"]),
        "edges": int(d.meta["edges"]),
        "network_km": round(float(d.meta["network_km"]), 1),
        "cells": len(d.cells),
        "positions": len(d.positions),
        "teams": len(d.teams),
        "registry_version": d.registry_version,
    }


def coverage_one(
    name: str, storage: Storage, options: CoverageOptions, *, layers: bool = False
) -> tuple[dict[str, Any], dict[str, gpd.GeoDataFrame] | None]:
    """Compute a district's coverage summary as ``coverage --district NAME --json`` prints it.

    Parameters
    ----------
    name
        The district.
    storage
        Where the cache and the database are.
    options
        The coverage options.
    layers
        Also return the district's GeoPackage layers (those of ``export``) and its outline.
    """
    from api.services import planning
    from api.services.export import export_layers

    d = district_with_registry(name, storage)
    o = options
    summary = planning.coverage_report(
        d, minutes=o.minutes, walk_m_per_min=o.walk_m_per_min, profile_name=o.profile_name,
        category_code=o.category_code, extra_sites=o.extra_sites, demand_file=o.demand_file,
    )
    if o.by_category:
        summary["by_category"] = planning.category_table(
            d, minutes=o.minutes, profile_name=o.profile_name, walk_m_per_min=o.walk_m_per_min,
            demand_file=o.demand_file,
        )
    if not layers:
        return summary, None
    cov = planning.planning_coverage(
        d, minutes=o.minutes, profile_name=o.profile_name, walk_m_per_min=o.walk_m_per_min,
        category_code=o.category_code, extra_sites=o.extra_sites,
    )
    out = export_layers(d, cov)
    res = summary["residents"]
    out["districts"] = gpd.GeoDataFrame(
        {
            "nodes": [summary["nodes"]], "network_km": [summary["network_km"]],
            "sites": [summary["sites"]], "teams": [summary["teams"]], "cells": [summary["cells"]],
            "minutes": [summary["minutes"]], "walk_m_per_min": [summary["walk_m_per_min"]],
            "covered_node_share": [summary["covered_node_share"]],
            "covered_cell_share": [summary["covered_cell_share"]],
            "residents": [res["residents"]], "f15": [res["f15"]],
            "mean_minutes": [res["mean_minutes"]], "gini": [res["gini"]],
            "extract_share": [summary["extract_share"]],
        },
        geometry=[d.outline], crs="EPSG:4326",
    )
    return summary, out


def run_task(task: Task, name: str, storage: Storage, kwargs: dict[str, Any]) -> DistrictResult:
    """Run one district's task; an error becomes the result's ``error`` (what Dask runs)."""
    started = time.perf_counter()
    result = DistrictResult(district=name, worker=_worker_name())
    try:
        if task == "build":
            result.summary = build_one(name, storage, **kwargs)
        else:
            result.summary, result.layers = coverage_one(name, storage, **kwargs)
    except Exception as e:  # reported with the district; the batch goes on
        result.error = _describe(e)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _describe(e: BaseException) -> str:
    text = " ".join(str(e).strip("'\"").split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _worker_name() -> str:
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not on a Dask worker (a test, or one district in-process)
        return f"pid {os.getpid()}"


# ------------------------------------------------------------------------------- the batch


def run_batch(
    task: Task,
    names: Iterable[str],
    storage: Storage,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_result: Callable[[DistrictResult], None] | None = None,
    **kwargs: Any,
) -> list[DistrictResult]:
    """Run a task for every district on a Dask cluster; return the results in ``names`` order.

    Parameters
    ----------
    task
        ``"build"`` (keyword ``rebuild``) or ``"coverage"`` (keywords ``options``, ``layers``).
    names
        The districts.
    storage
        Where every worker finds the cache and the database.
    scheduler
        Address of a running scheduler (``tcp://HOST:8786``); ``None`` starts a
        ``LocalCluster`` of worker processes for this batch.
    workers
        Worker processes of the ``LocalCluster`` (default: one per core, at most one per
        district); ignored with ``scheduler``.
    on_start
        Called once with a description of the cluster and the number of districts.
    on_result
        Called with each result as it arrives (progress, merging); the layers may be dropped
        by it.

    Raises
    ------
    BatchError
        If the scheduler cannot be reached, has no worker, or the database cannot be prepared.
    """
    from distributed import Client, LocalCluster, as_completed

    names = list(dict.fromkeys(names))
    if not names:
        return []
    cluster: LocalCluster | None = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as e:
                msg = f"cannot reach the Dask scheduler at {scheduler}: {_describe(e)}"
                raise BatchError(msg) from e
            where = f"Dask scheduler {scheduler}"
        else:
            n = workers or max(1, min(os.cpu_count() or 1, len(names)))
            # Processes, one thread each: the work holds the GIL in places, and a district
            # that crashes its process takes no other district with it.
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
            where = f"LocalCluster of {n} worker process{'es' if n > 1 else ''}"
        with client:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError as e:
                msg = f"the {where} has no worker after {CONNECT_TIMEOUT_S} s"
                raise BatchError(msg) from e
            try:
                client.submit(prepare_storage, storage.database_url, pure=False).result()
            except Exception as e:
                msg = f"cannot prepare the database {_safe_url(storage.database_url)}: " + \
                    _describe(e)
                raise BatchError(msg) from e
            if on_start is not None:
                on_start(where, len(names))
            futures = {
                client.submit(run_task, task, name, storage, kwargs, pure=False,
                              key=f"{task}-{i}-{name}-{time.time_ns()}"): name
                for i, name in enumerate(names)
            }
            results: dict[str, DistrictResult] = {}
            for future in as_completed(futures):
                name = futures[future]
                try:
                    result = future.result()
                except Exception as e:  # the worker died, or the result could not travel
                    result = DistrictResult(district=name, error=_describe(e))
                future.release()
                results[name] = result
                if on_result is not None:
                    on_result(result)
            return [results[name] for name in names]
    finally:
        if cluster is not None:
            cluster.close()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- merged outputs


class GeoPackageMerge:
    """Write every district's layers into one GeoPackage, one layer per kind.

    Each layer (``districts``, ``nodes``, ``edges``, ``sites``, ``cells``) holds all districts,
    told apart by its first column, ``district``: one layer to style and filter in QGIS rather
    than four per district. Written district by district as results arrive.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[str, int] = {}
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()

    def add(self, result: DistrictResult) -> None:
        """Append a district's layers (if any) and drop them from the result."""
        if not result.layers:
            return
        for layer in ("districts", "nodes", "edges", "sites", "cells"):
            gdf = result.layers.get(layer)
            if gdf is None:
                continue
            gdf = _plain_columns(gdf)
            gdf.insert(0, "district", result.district)
            mode = "a" if layer in self.rows else "w"
            gdf.to_file(self.out, layer=layer, driver="GPKG", mode=mode)
            self.rows[layer] = self.rows.get(layer, 0) + len(gdf)
        result.layers = None


def _plain_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Make text columns text, so every district's rows fit the layer the first one made."""
    gdf = gdf.copy()
    for col in gdf.columns:
        if col != gdf.geometry.name and gdf[col].dtype == object:
            gdf[col] = gdf[col].map(lambda v: None if v is None or v != v else str(v))
    return gdf


def coverage_rows(results: Iterable[DistrictResult]) -> pd.DataFrame:
    """One row per district with the headline figures of its coverage (the merged table)."""
    rows = []
    for r in results:
        if not r.ok:
            continue
        s, res = r.summary, r.summary["residents"]
        rows.append({
            "district": r.district, "nodes": s["nodes"], "network_km": s["network_km"],
            "sites": s["sites"], "cells": s["cells"],
            "covered_cell_share": s["covered_cell_share"], "f15": res["f15"],
            "mean_minutes": res["mean_minutes"], "gini": res["gini"],
            "extract_share": s["extract_share"],
        })
    return pd.DataFrame(rows)
