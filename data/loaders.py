"""Read the bundled files exactly as shipped; no conversion happens here."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent
OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL 1.0)"

TAIYUAN_LINES = DATA_DIR / "taiyuan" / "taiyuan_osm_lines.geojson"
TAIYUAN_POLYGONS = DATA_DIR / "taiyuan" / "taiyuan_osm_multipolygons.geojson"
HAIDIAN_OSM = DATA_DIR / "beijing_haidian" / "haidian_xueqing_cau_2026.osm"
OUTLINES = {
    "taiyuan": DATA_DIR / "boundaries" / "taiyuan_districts.geojson",
    "beijing": DATA_DIR / "boundaries" / "beijing_districts.geojson",
}
COUNTY_SEATS = DATA_DIR / "boundaries" / "county_level_seats_gcj02.csv"
BEIJING_TOWNSHIPS = DATA_DIR / "boundaries" / "beijing_townships_wgs84"


def read_taiyuan_lines() -> gpd.GeoDataFrame:
    """Read the ogr2ogr OSM ``lines`` layer of central Taiyuan (WGS84)."""
    gdf = gpd.read_file(TAIYUAN_LINES)
    return gdf.set_crs("EPSG:4326", allow_override=True)


def read_taiyuan_polygons() -> gpd.GeoDataFrame:
    """Read the ogr2ogr OSM ``multipolygons`` layer of central Taiyuan (WGS84)."""
    gdf = gpd.read_file(TAIYUAN_POLYGONS)
    return gdf.set_crs("EPSG:4326", allow_override=True)


def read_district_outlines_gcj02(city: str = "taiyuan") -> gpd.GeoDataFrame:
    """Read county-level outlines of a city; coordinates are **GCJ-02**, not WGS84.

    Parameters
    ----------
    city
        ``"taiyuan"`` or ``"beijing"``.
    """
    gdf = gpd.read_file(OUTLINES[city])
    # No datum is declared; tagged 4326 only so shapely can work: convert before overlaying.
    return gdf.set_crs("EPSG:4326", allow_override=True)[["name", "cp", "geometry"]]


def read_county_seats() -> pd.DataFrame:
    """Read county-level seat points (GCJ-02) with their 6-digit adcodes."""
    return pd.read_csv(COUNTY_SEATS, dtype={"adcode": str})


def read_beijing_townships() -> gpd.GeoDataFrame:
    """Read Beijing township units (WGS84) with their WorldPop ``population``."""
    gdf = gpd.read_file(BEIJING_TOWNSHIPS / "beijing.shp", encoding="utf-8")
    pop = np.load(BEIJING_TOWNSHIPS / "worldpop.npy")
    gdf = gdf.drop(columns=["geom"], errors="ignore")
    gdf["population"] = pop[:, 0]
    return gdf.set_crs("EPSG:4326", allow_override=True)
