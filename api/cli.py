"""The ``practice-circle`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from api.services.coverage import coverage_summary, district_coverage
from geo import (
    DEFAULT_DISTRICT,
    DEFAULT_WALK_M_PER_MIN,
    District,
    OSMDataError,
    UnknownCategoryError,
    UnknownDistrictError,
    bundled_districts,
    cached_districts,
    get_district,
    import_osm,
)
from geo.district import default_cache_dir, load_district
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
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _district(name: str, cache: Path | None) -> District:
    try:
        return get_district(name, cache_dir=cache, progress=sys.stderr.isatty())
    except UnknownDistrictError as e:
        fail(str(e).strip("'\""))


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


@app.command()
def coverage(
    district: DistrictOpt = DEFAULT_DISTRICT,
    minutes: Annotated[float, typer.Option(min=0.1, help="Walking time limit")] = 15.0,
    walk_m_per_min: Annotated[
        float, typer.Option(min=1.0, help="Walking pace (default 1000 m per 15 min)")
    ] = DEFAULT_WALK_M_PER_MIN,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show walking coverage: network, positions per level, covered shares, worst cells."""
    d = _district(district, cache)
    try:
        summary = coverage_summary(
            d, district_coverage(d, minutes=minutes, walk_m_per_min=walk_m_per_min)
        )
    except UnknownCategoryError as e:
        fail(str(e))
    if as_json:
        _print_json(summary)
        return
    print_coverage(summary)


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
    file: Annotated[Path, typer.Argument(help="OSM XML export (.osm)")],
    name: Annotated[str, typer.Option("--name", help="Name of the new district")],
    cache: CacheOpt = None,
) -> None:
    """Make a new district from any OSM XML export."""
    try:
        d = import_osm(file, name, cache_dir=cache, progress=sys.stderr.isatty())
    except OSMDataError as e:
        fail(str(e))
    console.print(
        f"imported {d.name}: {d.meta['nodes']:,} nodes, {d.meta['edges']:,} edges, "
        f"{d.meta['network_km']:.1f} km, {len(d.positions)} demo positions, {len(d.places)} places"
    )


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


def main() -> None:
    """Entry point."""
    app()


if __name__ == "__main__":
    main()
