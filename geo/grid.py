"""Cover an area with H3 grid cells (网格)."""

from __future__ import annotations

import geopandas as gpd
import h3
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

#: H3 resolution 9: cells of about 0.1 km² (edge ≈ 174 m), a walk of two or three minutes across.
DEFAULT_H3_RESOLUTION = 9


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
