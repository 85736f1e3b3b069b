"""Estimate residents (demand) per grid cell: published counts where bundled, OSM weights elsewhere.

Three sources, in order of preference:

- a user file of counts (:func:`read_demand_file`), aggregated to the cells;
- Beijing: WorldPop-derived township counts (bundled from mosstool) spread dasymetrically over
  OSM residential land use and buildings inside each township, then summed per cell;
- anywhere else (the bundled Taiyuan districts): no published population is bundled, so the
  cells get **relative weights** from OSM residential land use and buildings, reported as an index
  whose district total is :data:`DEFAULT_INDEX_TOTAL`. That index is not a head count.

Every result carries ``population_method`` (how it was made) and ``population_unit`` (a count or an
index) so that no estimate is shown as a census figure.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from pyproj.exceptions import ProjError

import data
from geo._errors import DemandFileError
from geo.district import District
from geo.grid import polygonal

#: District total of the relative residents index (Taiyuan and other places without counts).
DEFAULT_INDEX_TOTAL = 1000.0
#: A zone crossed by a walkable street but with no mapped housing weighs as if this share of
#: its area were residential land use: OSM maps only some compounds and buildings, and people
#: live along unmapped streets too.
DEFAULT_FLOOR_SHARE = 0.05
#: Building types counted as dwellings, weighted by footprint x :data:`DWELLING_FACTOR` on top
#: of the residential land use beneath them (multi-storey housing).
DWELLING_BUILDINGS = frozenset({
    "residential", "apartments", "house", "detached", "semidetached_house", "terrace",
    "dormitory", "bungalow", "villa",
})
DWELLING_FACTOR = 2.0
#: ``building=yes`` (use unknown) counts as possible housing at footprint x this factor; other
#: building types (office, school, warehouse, ruins…) count for nothing.
UNKNOWN_BUILDING_FACTOR = 1.0

METHOD_ESTIMATE = (
    "estimate: relative weights from OSM residential land use and buildings "
    "(no published population bundled)"
)
METHOD_WORLDPOP = (
    "WorldPop-derived township counts (mosstool; year undocumented), dasymetric by OSM "
    "residential land use and buildings"
)
#: Bounding box of the bundled Beijing townships (lon/lat).
_BEIJING_BBOX = (115.41, 39.44, 117.51, 41.06)
_COUNT_COLUMNS = ("population", "count")
_LON_COLUMNS = ("lon", "lng", "longitude", "x")
_LAT_COLUMNS = ("lat", "latitude", "y")
#: The largest count one row may hold: more would be no head count (nor a sane index), and sums
#: of such numbers overflow.
MAX_COUNT = 1e12
#: How a file must begin before GDAL may read it. GDAL picks its driver from the content, not the
#: name: a ".geojson" holding an OGR VRT would have it read whatever file the VRT names.
_GEOPACKAGE_HEADER = b"SQLite format 3\x00"
_GEOPACKAGE_IDS = (b"GPKG", b"GP10", b"GP11")  # SQLite application_id, at byte 68
_SNIFF_BYTES = 1 << 16


# ------------------------------------------------------------------------------ OSM housing


def building_factor(tags: pd.Series) -> np.ndarray:
    """Weight per unit of footprint for OSM ``building`` values (see :data:`DWELLING_BUILDINGS`)."""
    t = tags.fillna("").astype(str).str.strip().str.lower().to_numpy()
    return np.where(
        np.isin(t, list(DWELLING_BUILDINGS)), DWELLING_FACTOR,
        np.where(t == "yes", UNKNOWN_BUILDING_FACTOR, 0.0),
    )


def housing_weights(
    zones: np.ndarray,
    landuse: np.ndarray,
    buildings: np.ndarray,
    factors: np.ndarray,
    streets: np.ndarray,
    *,
    floor_share: float = DEFAULT_FLOOR_SHARE,
) -> np.ndarray:
    """Weigh zones by the housing OSM maps in them (all geometries in one metric CRS).

    ``weight = residential land-use area + sum(building footprint x factor) + floor``, where the
    floor is ``floor_share x zone area`` for zones crossed by a street and 0 otherwise.

    Parameters
    ----------
    zones
        Polygons to weigh.
    landuse
        ``landuse=residential`` polygons (overlaps are merged first).
    buildings, factors
        Building footprints and their weight per m² (:func:`building_factor`).
    streets
        Walkable street lines.
    floor_share
        See :data:`DEFAULT_FLOOR_SHARE`.

    Returns
    -------
    numpy.ndarray
        One weight (m² of residential land-use equivalent) per zone.
    """
    zones = np.asarray(zones)
    weight = np.zeros(len(zones))
    if len(zones) == 0:
        return weight
    landuse = shapely.make_valid(np.asarray(landuse))
    landuse = landuse[shapely.get_dimensions(landuse) == 2] if len(landuse) else landuse
    if len(landuse):
        merged = shapely.union_all(landuse)
        weight += shapely.area(shapely.intersection(zones, merged))
    buildings = np.asarray(buildings)
    factors = np.asarray(factors, dtype=float)
    use = factors > 0
    if use.any():
        b, f = shapely.make_valid(buildings[use]), factors[use]
        zi, bi = shapely.STRtree(b).query(zones, predicate="intersects")
        area = shapely.area(shapely.intersection(zones[zi], b[bi])) * f[bi]
        weight += np.bincount(zi, weights=area, minlength=len(zones))
    streets = np.asarray(streets)
    if len(streets) and floor_share > 0:
        zi = np.unique(shapely.STRtree(streets).query(zones, predicate="intersects")[0])
        weight[zi] += floor_share * shapely.area(zones[zi])
    return weight


def _source_osm(district: District) -> Path | None:
    """Return the OSM XML a district was imported from, when it is still there."""
    if district.meta.get("source_kind") != "osm-xml" or not district.meta.get("osm_path"):
        return None
    path = Path(str(district.meta["osm_path"]))
    return path if path.is_file() else None


def osm_housing(district: District) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str]:
    """Read the residential land use and buildings mapped in and around a district (WGS84).

    Bundled Taiyuan districts read the GDAL ``multipolygons`` layer; imported districts read
    their OSM XML with :func:`osmnx.features_from_xml` when the file is known; otherwise only the
    ``landuse=residential`` places of the district are used.

    Returns
    -------
    landuse, buildings, note
        Land-use polygons, building polygons with a ``building`` column, and a note on what was
        available.
    """
    empty = gpd.GeoDataFrame({"building": []}, geometry=[], crs="EPSG:4326")
    places = district.places
    landuse = places[places["kind"] == "residential"][["geometry"]]
    note = "OSM residential land use and buildings"
    if district.meta.get("source_kind") == "taiyuan-extract":
        polys = data.read_taiyuan_polygons()
        b = polys[polys["building"].fillna("").astype(str).str.strip() != ""]
        buildings = b[["building", "geometry"]]
    elif (path := _source_osm(district)) is not None:
        feats = ox.features_from_xml(path, tags={"building": True, "landuse": ["residential"]})
        feats = feats[feats.geom_type.isin(["Polygon", "MultiPolygon"])]
        lu = feats["landuse"] if "landuse" in feats else pd.Series("", index=feats.index)
        landuse = feats[lu.fillna("").astype(str) == "residential"][["geometry"]]
        bt = feats["building"] if "building" in feats else pd.Series("", index=feats.index)
        buildings = gpd.GeoDataFrame(
            {"building": bt.fillna("").astype(str)}, geometry=feats.geometry, crs=feats.crs
        )
        buildings = buildings[buildings["building"] != ""]
    else:
        buildings = empty
        note = "OSM residential land use only (no building footprints available)"
    bounds = shapely.box(*district.cells.total_bounds)
    landuse = landuse[landuse.intersects(bounds)]
    buildings = buildings[buildings.intersects(bounds)]
    return (
        gpd.GeoDataFrame(landuse, geometry="geometry", crs="EPSG:4326"),
        gpd.GeoDataFrame(buildings, geometry="geometry", crs="EPSG:4326"),
        note,
    )


def _metric(gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any) -> np.ndarray:
    return np.asarray(gdf.geometry.to_crs(crs).to_numpy())


def _district_weights(
    district: District, zones: np.ndarray, crs: Any, *, floor_share: float
) -> tuple[np.ndarray, str]:
    landuse, buildings, note = osm_housing(district)
    w = housing_weights(
        zones,
        _metric(landuse, crs),
        _metric(buildings, crs),
        building_factor(buildings["building"]),
        _metric(district.edges, crs),
        floor_share=floor_share,
    )
    return w, note


# ------------------------------------------------------------------------------ the estimates


def _frame(
    district: District, population: np.ndarray, method: str, unit: str, note: str,
    **attrs: Any,
) -> gpd.GeoDataFrame:
    cells = district.cells
    out = gpd.GeoDataFrame(
        {
            "lon": cells["lon"].to_numpy(),
            "lat": cells["lat"].to_numpy(),
            "population": np.asarray(population, dtype=float),
            "population_method": method,
            "population_unit": unit,
        },
        geometry=cells.geometry.to_numpy(),
        crs="EPSG:4326",
        index=pd.Index(cells["cell_id"].to_numpy(), name="cell_id"),
    )
    out.attrs.update(population_method=method, population_unit=unit, population_note=note, **attrs)
    return out


def estimate_index(
    district: District,
    *,
    index_total: float = DEFAULT_INDEX_TOTAL,
    floor_share: float = DEFAULT_FLOOR_SHARE,
) -> gpd.GeoDataFrame:
    """Spread a relative residents index over a district's cells from OSM housing.

    Each cell weighs its residential land use, building footprints and a floor for streets
    without mapped housing (:func:`housing_weights`); the weights are scaled so the district
    sums to ``index_total``. The result is **not** a population count.

    Parameters
    ----------
    district
        The district.
    index_total
        What the cells sum to.
    floor_share
        Weight of a cell with streets but nothing mapped, as a share of its area.
    """
    crs = district.network.crs_metric
    zones = _metric(district.cells, crs)
    w, note = _district_weights(district, zones, crs, floor_share=floor_share)
    if w.sum() <= 0:  # nothing mapped and no streets: spread by area
        w = shapely.area(zones)
    pop = w / w.sum() * index_total if w.sum() > 0 else w
    unit = f"index (district total = {index_total:g}; a relative weight, not a head count)"
    floor_note = (
        f"{note}; a cell with streets but no mapped housing weighs as if {floor_share:.0%} of "
        "its area were residential land use"
    )
    return _frame(district, pop, METHOD_ESTIMATE, unit, floor_note, index_total=index_total)


def beijing_townships(district: District) -> gpd.GeoDataFrame | None:
    """Return the Beijing townships a district's cells touch (``None`` outside Beijing)."""
    if district.cells.empty:
        return None
    x0, y0, x1, y1 = district.cells.total_bounds
    bx0, by0, bx1, by1 = _BEIJING_BBOX
    if x1 < bx0 or x0 > bx1 or y1 < by0 or y0 > by1:
        return None
    towns = data.read_beijing_townships()
    hit = towns[towns.intersects(district.cells.union_all())]
    return hit if len(hit) else None


def worldpop_dasymetric(
    district: District,
    townships: gpd.GeoDataFrame,
    *,
    floor_share: float = DEFAULT_FLOOR_SHARE,
) -> gpd.GeoDataFrame:
    """Spread township counts over the cells by OSM residential land use and buildings.

    Each township's count is first cut to the part the district's cells cover. The OSM extract
    maps housing only inside the district, so the housing outside is unknown; the share kept is
    therefore the township's **area** share under the cells (areal weighting). Inside, the kept
    count is spread over the cell-township pieces by :func:`housing_weights` (by area where a
    township's pieces have no weight at all) and summed per cell. A township only partly under
    the cells thus contributes only that share, and the total never exceeds the townships' sum.

    Parameters
    ----------
    district
        The district.
    townships
        WGS84 townships with ``population`` (from :func:`beijing_townships`).
    floor_share
        See :func:`housing_weights`.
    """
    crs = district.network.crs_metric
    cells_m = _metric(district.cells, crs)
    towns_m = _metric(townships, crs)
    ci, ti = shapely.STRtree(towns_m).query(cells_m, predicate="intersects")
    pieces = shapely.intersection(cells_m[ci], towns_m[ti])
    area = shapely.area(pieces)
    ok = area > 0
    ci, ti, pieces, area = ci[ok], ti[ok], pieces[ok], area[ok]
    w, note = _district_weights(district, pieces, crs, floor_share=floor_share)
    n_t = len(townships)
    inside = np.bincount(ti, weights=area, minlength=n_t) / shapely.area(towns_m)
    kept = townships["population"].to_numpy(dtype=float) * np.clip(inside, 0.0, 1.0)
    w_t = np.bincount(ti, weights=w, minlength=n_t)
    a_t = np.bincount(ti, weights=area, minlength=n_t)
    share = np.where(w_t[ti] > 0, w / np.where(w_t[ti] > 0, w_t[ti], 1.0), area / a_t[ti])
    pop = np.bincount(ci, weights=kept[ti] * share, minlength=len(cells_m))
    names = townships.get("乡", pd.Series([""] * n_t, index=townships.index)).astype(str)
    touched = pd.DataFrame({
        "township": names.to_numpy(),
        "population": townships["population"].to_numpy(dtype=float),
        "area_share_inside": inside,
        "kept": kept,
    })
    full_note = (
        f"{note}; townships cut to the cells by area share: "
        + ", ".join(f"{r.township} {r.area_share_inside:.1%}" for r in touched.itertuples())
    )
    return _frame(district, pop, METHOD_WORLDPOP, "persons (WorldPop estimate)", full_note,
                  townships=touched.to_dict("records"))


# ------------------------------------------------------------------------------ user files


def _pick(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for w in wanted:
        if w.lower() in lower:
            return lower[w.lower()]
    return None


def _numbers(column: pd.Series) -> pd.Series:
    """Numbers of a column as floats; NaN where a value is missing or not a number."""
    try:
        return pd.to_numeric(column, errors="coerce").astype(float)
    except (OverflowError, TypeError, ValueError):  # e.g. a 400-digit integer
        def one(value: Any) -> float:
            try:
                return float(pd.to_numeric(value))
            except OverflowError:
                return np.inf
            except (TypeError, ValueError):
                return np.nan

        return column.map(one).astype(float)


def _counts(path: Path, frame: pd.DataFrame, count_column: str | None) -> tuple[np.ndarray, str]:
    columns = [str(c) for c in frame.columns if c != "geometry"]
    wanted = (count_column,) if count_column else _COUNT_COLUMNS
    col = _pick(columns, wanted)
    if col is None:
        looked = " or ".join(repr(w) for w in wanted)
        msg = f"{path}: no count column {looked} (columns: {', '.join(columns) or 'none'})"
        raise DemandFileError(msg)
    values = _numbers(frame[col])
    bad = values.isna() & frame[col].notna()
    if bad.any():
        example = str(frame[col][bad].iloc[0])
        example = example if len(example) <= 40 else example[:40] + "…"
        msg = f"{path}: column {col!r} has non-numeric values (e.g. {example!r})"
        raise DemandFileError(msg)
    if values.isna().any():
        msg = f"{path}: column {col!r} has {int(values.isna().sum())} missing values"
        raise DemandFileError(msg)
    if (values < 0).any():
        msg = f"{path}: column {col!r} has negative counts"
        raise DemandFileError(msg)
    if (values > MAX_COUNT).any():
        msg = f"{path}: column {col!r} has counts above {MAX_COUNT:g} (or infinite)"
        raise DemandFileError(msg)
    return values.to_numpy(dtype=float), col


def _brief(error: Exception, limit: int = 200) -> str:
    """Put a reader's error message on one line, cut if long (it may quote the file)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _check_signature(path: Path, error: type[ValueError], what: str) -> None:
    """Refuse a GeoPackage or GeoJSON file whose first bytes are not of that format."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        msg = f"{path}: cannot read {what} (the file is empty)"
        raise error(msg)
    if path.suffix.lower() == ".gpkg":
        if not head.startswith(_GEOPACKAGE_HEADER) or head[68:72] not in _GEOPACKAGE_IDS:
            msg = f"{path}: cannot read {what} (not a GeoPackage: no GeoPackage header)"
            raise error(msg)
    elif not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        msg = f"{path}: cannot read {what} (not GeoJSON: it does not start with '{{')"
        raise error(msg)


def _lonlat(frame: gpd.GeoDataFrame) -> bool:
    """Tell whether every coordinate is a finite longitude/latitude."""
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    return bool((np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all())


def read_vector_file(
    path: str | Path, *, what: str, error: type[ValueError] = DemandFileError
) -> gpd.GeoDataFrame:
    """Read a GeoPackage or GeoJSON file with GDAL, its features' geometry in WGS84.

    The first bytes must be of the format its name says (see :data:`_GEOPACKAGE_HEADER`);
    the geometry is converted to longitude/latitude (a file without a CRS must already be in
    it), and every coordinate must be finite and within [-180, 180] x [-90, 90]. GDAL's warnings
    are not shown: what it returns is checked here and by the caller.

    Parameters
    ----------
    path
        ``.gpkg``, ``.geojson`` or ``.json``.
    what
        What the file holds, for messages (``"residents"``, ``"extra sites"``).
    error
        The exception to raise.

    Raises
    ------
    ValueError
        Of type ``error``, naming the file and what is wrong.
    """
    path = Path(path)
    _check_signature(path, error, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own errors for unreadable files
        msg = f"{path}: cannot read {what} ({type(e).__name__}: {_brief(e)})"
        raise error(msg) from e
    if not isinstance(frame, gpd.GeoDataFrame):
        msg = f"{path}: no geometry in the file"
        raise error(msg)
    if frame.crs is None:
        if not _lonlat(frame):
            msg = f"{path}: no CRS and the coordinates are not longitude/latitude"
            raise error(msg)
        return frame.set_crs("EPSG:4326")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-range points become inf, refused below
            frame = frame.to_crs("EPSG:4326")
    except ProjError as e:
        msg = f"{path}: cannot convert its CRS to longitude/latitude ({_brief(e)})"
        raise error(msg) from e
    if not _lonlat(frame):
        msg = f"{path}: coordinates outside longitude/latitude (is the CRS right?)"
        raise error(msg)
    return frame


def _areas(path: Path, geoms: np.ndarray) -> np.ndarray:
    """Polygons made valid (a self-crossing ring would break the area split), points kept."""
    geoms = geoms.copy()
    is_poly = shapely.get_dimensions(geoms) == 2
    for i in np.flatnonzero(is_poly & ~shapely.is_valid(geoms)):
        fixed = polygonal(geoms[i])
        if fixed.is_empty:
            msg = f"{path}: feature {i + 1} is a polygon without area"
            raise DemandFileError(msg)
        geoms[i] = fixed
    return geoms


def read_demand_file(path: str | Path, *, count_column: str | None = None) -> gpd.GeoDataFrame:
    """Read residents from a GeoPackage, GeoJSON or CSV file.

    Parameters
    ----------
    path
        ``.gpkg`` / ``.geojson`` / ``.json`` with point or polygon geometries, or ``.csv`` with
        ``lon``/``lat`` columns (also ``lng``, ``longitude``, ``x`` / ``latitude``, ``y``).
    count_column
        Column holding the residents (default: ``population``, else ``count``; names match
        case-insensitively).

    Returns
    -------
    geopandas.GeoDataFrame
        WGS84 geometries with a ``population`` float column; ``attrs`` names the source file and
        column.

    Raises
    ------
    DemandFileError
        If the file is missing, empty or unreadable, is not of the format its name says, has no
        rows, no usable geometry or coordinates (finite longitude/latitude), lacks the count
        column, or holds non-numeric, missing, negative or huge (> :data:`MAX_COUNT`) counts;
        the message names the file and the column.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise DemandFileError(msg)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            msg = f"{path}: cannot read CSV ({_brief(e)})"
            raise DemandFileError(msg) from e
        columns = [str(c) for c in frame.columns]
        lon, lat = _pick(columns, _LON_COLUMNS), _pick(columns, _LAT_COLUMNS)
        if lon is None or lat is None:
            msg = (
                f"{path}: no geometry: a CSV needs lon and lat columns (looked for "
                f"{'/'.join(_LON_COLUMNS)} and {'/'.join(_LAT_COLUMNS)}; columns: "
                f"{', '.join(columns) or 'none'})"
            )
            raise DemandFileError(msg)
        if frame.empty:
            msg = f"{path}: no rows of residents"
            raise DemandFileError(msg)
        counts, col = _counts(path, frame, count_column)
        x = _numbers(frame[lon]).to_numpy()
        y = _numbers(frame[lat]).to_numpy()
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            msg = f"{path}: columns {lon!r}/{lat!r} have missing or non-numeric coordinates"
            raise DemandFileError(msg)
        if (np.abs(x) > 180).any() or (np.abs(y) > 90).any():
            msg = f"{path}: columns {lon!r}/{lat!r} are not WGS84 longitude/latitude degrees"
            raise DemandFileError(msg)
        gdf = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    elif suffix in (".gpkg", ".geojson", ".json"):
        frame = read_vector_file(path, what="residents")
        if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.isna().all():
            msg = f"{path}: no geometry (expected points or polygons with a count column)"
            raise DemandFileError(msg)
        if frame.geometry.isna().any() or frame.geometry.is_empty.any():
            missing = int((frame.geometry.isna() | frame.geometry.is_empty).sum())
            msg = f"{path}: {missing} features have no geometry"
            raise DemandFileError(msg)
        kinds = set(frame.geom_type)
        if not kinds <= {"Point", "Polygon", "MultiPolygon"}:
            msg = f"{path}: unsupported geometry {sorted(kinds)} (expected points or polygons)"
            raise DemandFileError(msg)
        counts, col = _counts(path, frame, count_column)
        gdf = gpd.GeoDataFrame(geometry=_areas(path, frame.geometry.to_numpy()),
                               crs="EPSG:4326")
    else:
        msg = f"{path}: unsupported file type {suffix!r} (use .gpkg, .geojson or .csv)"
        raise DemandFileError(msg)
    gdf["population"] = counts
    gdf.attrs.update(source=path.name, count_column=col)
    return gdf


def residents_to_cells(
    residents: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, *, crs_metric: Any
) -> tuple[np.ndarray, float]:
    """Sum residents per cell: points by the cell they fall in, polygons by area share.

    Returns
    -------
    population, outside
        Residents per cell (in ``cells`` order) and the residents that fall outside every cell.
    """
    pop = np.zeros(len(cells))
    total = float(residents["population"].sum())
    if len(residents) == 0 or len(cells) == 0:
        return pop, total
    cells_m = _metric(cells, crs_metric)
    geoms = _metric(residents, crs_metric)
    counts = residents["population"].to_numpy(dtype=float)
    area = shapely.area(geoms)
    is_area = area > 0
    pts = np.where(is_area, None, shapely.point_on_surface(geoms))
    tree = shapely.STRtree(cells_m)
    if (~is_area).any():
        idx = np.flatnonzero(~is_area)
        ri, ci = tree.query(pts[idx], predicate="intersects")
        first = np.unique(ri, return_index=True)[1]  # a point on a shared edge counts once
        pop += np.bincount(ci[first], weights=counts[idx][ri[first]], minlength=len(cells))
    if is_area.any():
        idx = np.flatnonzero(is_area)
        ri, ci = tree.query(geoms[idx], predicate="intersects")
        share = shapely.area(shapely.intersection(geoms[idx][ri], cells_m[ci])) / area[idx][ri]
        pop += np.bincount(ci, weights=counts[idx][ri] * share, minlength=len(cells))
    return pop, max(total - float(pop.sum()), 0.0)


# ------------------------------------------------------------------------------ entry point


def cell_demand(
    district: District,
    *,
    demand_file: str | Path | None = None,
    count_column: str | None = None,
    index_total: float = DEFAULT_INDEX_TOTAL,
    floor_share: float = DEFAULT_FLOOR_SHARE,
) -> gpd.GeoDataFrame:
    """Return residents per grid cell of a district.

    Parameters
    ----------
    district
        The district.
    demand_file
        A residents file (see :func:`read_demand_file`); it takes precedence over the bundled
        estimates.
    count_column
        The file's count column.
    index_total
        District total of the relative index used where no counts exist.
    floor_share
        Weight of cells with streets but no mapped housing (see :func:`housing_weights`).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``cell_id`` with ``lon``, ``lat``, ``population`` (float),
        ``population_method``, ``population_unit`` and the cell hexagon (WGS84). ``attrs`` holds
        the method, unit and a ``population_note``.

    Raises
    ------
    DemandFileError
        If ``demand_file`` cannot be used (:func:`read_demand_file`), or puts no resident in
        the district's cells.
    """
    if demand_file is not None:
        residents = read_demand_file(demand_file, count_column=count_column)
        pop, outside = residents_to_cells(
            residents, district.cells, crs_metric=district.network.crs_metric
        )
        name, col = residents.attrs["source"], residents.attrs["count_column"]
        if not pop.sum() > 0:  # every share would be 0/0
            total = float(residents["population"].sum())
            where = "its counts sum to 0" if total <= 0 else (
                f"none of its {total:g} residents lie in the grid cells of {district.name}"
            )
            msg = f"{demand_file}: {where}; no share of residents can be computed"
            raise DemandFileError(msg)
        method = (
            f"user file {name} (column {col!r}): points summed by cell, polygons split by area"
        )
        total = float(residents["population"].sum())
        note = f"{outside:g} of {total:g} residents lie outside the cells"
        return _frame(district, pop, method, f"as given in {name}", note,
                      population_outside=outside)
    towns = beijing_townships(district)
    if towns is not None:
        return worldpop_dasymetric(district, towns, floor_share=floor_share)
    return estimate_index(district, index_total=index_total, floor_share=floor_share)
