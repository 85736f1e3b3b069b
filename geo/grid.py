"""Cover an area with H3 grid cells (网格) and say where in each cell its residents are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import h3
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from geo.district import District

#: H3 resolution 9: cells of about 0.1 km² (edge ≈ 174 m), a walk of two or three minutes across.
DEFAULT_H3_RESOLUTION = 9
#: Fixed samples per cell (:func:`cell_samples`): a regular hexagon holds exactly the centre and
#: its six lattice neighbours, each standing for about a seventh of the cell.
DEFAULT_SAMPLES_PER_CELL = 7


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """Return the polygon parts of a geometry (``make_valid`` may add stray lines and points)."""
    valid = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(valid) if isinstance(p, Polygon | MultiPolygon)]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def grid_cells(area: BaseGeometry, *, resolution: int = DEFAULT_H3_RESOLUTION) -> gpd.GeoDataFrame:
    """Return the H3 cells whose centre lies in a WGS84 area.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id`` (H3 index), ``lon``, ``lat`` (cell centre) and the hexagon geometry.
    """
    ids: set[str] = set()
    area = polygonal(area)
    for poly in shapely.get_parts(area):
        if not poly.is_empty:
            ids.update(h3.geo_to_cells(poly.__geo_interface__, resolution))
    if not ids and not area.is_empty:  # an area smaller than a cell still gets its own cell
        p = area.representative_point()
        ids.add(h3.latlng_to_cell(p.y, p.x, resolution))
    cells = sorted(ids)
    centres = [h3.cell_to_latlng(c) for c in cells]
    hexes = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return gpd.GeoDataFrame(
        {
            "cell_id": cells,
            "lon": [c[1] for c in centres],
            "lat": [c[0] for c in centres],
        },
        geometry=shapely.make_valid(hexes) if hexes else [],
        crs="EPSG:4326",
    )


def cells_near_lines(
    lines: gpd.GeoSeries, *, resolution: int = DEFAULT_H3_RESOLUTION, step_m: float = 50.0
) -> set[str]:
    """Return the H3 cells a line passes through, plus their neighbours.

    Used to tell where an extract has mapped streets: a cell counts when a street runs through
    it or through a cell next to it (within about 350 m at resolution 9).
    """
    if lines.empty:
        return set()
    utm = lines.estimate_utm_crs()
    dense = shapely.segmentize(lines.to_crs(utm).to_numpy(), step_m)
    pts = gpd.GeoSeries(shapely.points(shapely.get_coordinates(dense)), crs=utm).to_crs(4326)
    hit = {h3.latlng_to_cell(y, x, resolution) for x, y in zip(pts.x, pts.y, strict=True)}
    out: set[str] = set()
    for c in hit:
        out.update(h3.grid_disk(c, 1))
    return out


def cells_geometry(cells: set[str] | list[str]) -> BaseGeometry:
    """Union of H3 cells as one WGS84 (multi)polygon."""
    if not cells:
        return Polygon()
    shape = h3.cells_to_h3shape(list(cells))
    return shapely.make_valid(shapely.geometry.shape(shape.__geo_interface__))


# ------------------------------------------------------------------------ where residents are


@dataclass(frozen=True)
class CellPoints:
    """Where each grid cell's residents are: several weighted points per cell.

    ``cell`` indexes the rows of the cells they describe (every cell has at least one point);
    ``lon``, ``lat`` are WGS84; ``weight`` (positive) is the share of the cell's residents a
    point stands for, relative to the other points of its cell.
    """

    cell: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    n_cells: int

    def __len__(self) -> int:
        return len(self.cell)

    @classmethod
    def one_per_cell(cls, lon: np.ndarray, lat: np.ndarray) -> CellPoints:
        """One point per cell (e.g. its centre), weight 1."""
        lon = np.asarray(lon, dtype=float).ravel()
        lat = np.asarray(lat, dtype=float).ravel()
        return cls(np.arange(len(lon)), lon, lat, np.ones(len(lon)), len(lon))

    @classmethod
    def from_metric(
        cls, cell: np.ndarray, points: np.ndarray, weight: np.ndarray, n_cells: int, crs: Any
    ) -> CellPoints:
        """Build from shapely points in a metric CRS (converted to WGS84)."""
        to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_wgs.transform(shapely.get_x(points), shapely.get_y(points))
        return cls(np.asarray(cell, dtype=np.int64), np.atleast_1d(np.asarray(lon, dtype=float)),
                   np.atleast_1d(np.asarray(lat, dtype=float)), np.asarray(weight, dtype=float),
                   int(n_cells))


def lattice_in(
    polygons: np.ndarray, centres: np.ndarray, spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points of a triangular lattice inside each polygon (all in one metric CRS).

    Each polygon's lattice is anchored at its centre point and has its own spacing, so a
    regular hexagon of circumradius ``R`` with spacing ``R * sqrt(3/7)`` holds exactly 7 points.

    Returns
    -------
    owner, points
        The polygon each point lies in, and the shapely points.
    """
    polygons = np.asarray(polygons)
    if len(polygons) == 0:
        return np.empty(0, np.int64), np.empty(0, dtype=object)
    x0, y0, x1, y1 = shapely.bounds(polygons).T
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    reach = np.max(np.abs(np.column_stack([x0 - cx, x1 - cx, y0 - cy, y1 - cy])), axis=1)
    k = int(np.ceil(np.max(reach / spacing) * 2 / np.sqrt(3))) + 1
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1))
    # Triangular lattice: rows sqrt(3)/2 apart, every other row shifted by half a step.
    ux = (i + 0.5 * (j % 2)).ravel()
    uy = (j * np.sqrt(3) / 2).ravel()
    px = cx[:, None] + spacing[:, None] * ux[None, :]
    py = cy[:, None] + spacing[:, None] * uy[None, :]
    owner = np.repeat(np.arange(len(polygons)), len(ux))
    px, py = px.ravel(), py.ravel()
    shapely.prepare(polygons)
    inside = shapely.contains_xy(polygons[owner], px, py)
    return owner[inside], shapely.points(px[inside], py[inside])


def cell_samples(
    cells: gpd.GeoDataFrame,
    *,
    crs: Any,
    per_cell: int = DEFAULT_SAMPLES_PER_CELL,
) -> CellPoints:
    """Spread fixed, equally weighted samples over each cell.

    A triangular lattice anchored at the cell's centroid, spaced so the cell's area holds about
    ``per_cell`` points (a regular H3 hexagon exactly 7); a cell too small or thin to hold any
    gets its representative point. Each point stands for an equal share of the cell's area.

    Parameters
    ----------
    cells
        Cells with polygon geometry (any CRS).
    crs
        A metric CRS to lay the lattice out in (e.g. the network's).
    per_cell
        About how many points a cell gets.
    """
    zones = np.asarray(cells.geometry.to_crs(crs).to_numpy())
    owner, pts = lattice_samples(zones, per_cell)
    return CellPoints.from_metric(owner, pts, np.ones(len(pts)), len(zones), crs)


def lattice_samples(zones: np.ndarray, per_cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Spread about ``per_cell`` lattice points over each metric polygon (see :func:`lattice_in`).

    A polygon holding none gets its representative point.

    Returns
    -------
    owner, points
        The polygon of each point (sorted) and the shapely points.
    """
    area = shapely.area(zones)
    spacing = np.sqrt(2.0 * np.maximum(area, 1e-6) / (np.sqrt(3) * max(per_cell, 1)))
    owner, pts = lattice_in(zones, shapely.centroid(zones), spacing)
    empty = np.setdiff1d(np.arange(len(zones)), owner)
    owner = np.concatenate([owner, empty])
    pts = np.concatenate([pts, shapely.point_on_surface(zones[empty])])
    order = np.argsort(owner, kind="stable")
    return owner[order], pts[order]


def resident_points(
    district: District, *, per_cell: int = DEFAULT_SAMPLES_PER_CELL
) -> CellPoints:
    """Place each cell's residents on its OSM housing, weighted as the residents estimate is.

    The weights are those of :func:`geo.demand.housing_weights` split by where they lie:
    each dwelling building's part in the cell is a point (its representative point) weighing
    its footprint x factor; residential land use in the cell is spread over a lattice four
    times as dense as :func:`geo.grid.cell_samples` (its representative point when none falls
    inside); the floor for a cell crossed by a street is spread over the cell's samples. A
    cell's points thus weigh together what :func:`geo.demand.housing_weights` gives the cell.
    Cells with no weight at all get the fixed samples, equally weighted.

    Parameters
    ----------
    district
        The district; its OSM housing is read with :func:`geo.demand.osm_housing`.
    per_cell
        Fixed samples per cell (see :func:`geo.grid.cell_samples`).
    """
    from geo.demand import DEFAULT_FLOOR_SHARE, building_factor, osm_housing  # (it imports us)

    crs = district.network.crs_metric
    zones = np.asarray(district.cells.geometry.to_crs(crs).to_numpy())
    n = len(zones)
    landuse, buildings, _ = osm_housing(district)
    owners: list[np.ndarray] = []
    points: list[np.ndarray] = []
    weights: list[np.ndarray] = []

    factor = building_factor(buildings["building"])
    use = factor > 0
    if use.any():
        b = shapely.make_valid(np.asarray(buildings.geometry.to_crs(crs).to_numpy())[use])
        zi, bi = shapely.STRtree(b).query(zones, predicate="intersects")
        pieces = shapely.intersection(zones[zi], b[bi])
        w = shapely.area(pieces) * factor[use][bi]
        keep = w > 0
        owners.append(zi[keep])
        points.append(shapely.point_on_surface(pieces[keep]))
        weights.append(w[keep])

    lu = shapely.make_valid(np.asarray(landuse.geometry.to_crs(crs).to_numpy()))
    lu = lu[shapely.get_dimensions(lu) == 2] if len(lu) else lu
    if len(lu):
        part = shapely.intersection(zones, shapely.union_all(lu))
        area = shapely.area(part)
        has = np.flatnonzero(area > 0)
        fine_owner, fine = lattice_samples(zones[has], per_cell * 4)
        inside = shapely.contains(part[has][fine_owner], fine)
        fine_owner, fine = has[fine_owner[inside]], fine[inside]
        count = np.bincount(fine_owner, minlength=n)
        alone = has[count[has] == 0]
        owners += [fine_owner, alone]
        points += [fine, shapely.point_on_surface(part[alone])]
        weights += [area[fine_owner] / count[fine_owner], area[alone]]

    coarse_owner, coarse = lattice_samples(zones, per_cell)
    per = np.bincount(coarse_owner, minlength=n)
    streets = np.asarray(district.edges.geometry.to_crs(crs).to_numpy())
    floor = np.zeros(n)
    if len(streets):
        crossed = np.unique(shapely.STRtree(streets).query(zones, predicate="intersects")[0])
        floor[crossed] = DEFAULT_FLOOR_SHARE * shapely.area(zones[crossed])
    owners.append(coarse_owner)
    points.append(coarse)
    weights.append(floor[coarse_owner] / per[coarse_owner])

    owner = np.concatenate(owners)
    pts = np.concatenate(points)
    weight = np.concatenate(weights)
    total = np.bincount(owner, weights=weight, minlength=n)
    # A cell nothing weighs: its fixed samples, equally.
    bare = total[coarse_owner] <= 0
    weight[len(weight) - len(coarse_owner):][bare] = 1.0
    keep = weight > 0
    owner, pts, weight = owner[keep], pts[keep], weight[keep]
    order = np.argsort(owner, kind="stable")
    return CellPoints.from_metric(owner[order], pts[order], weight[order], n, crs)
