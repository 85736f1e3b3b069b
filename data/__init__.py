"""Bundled real data (OpenStreetMap extracts, district outlines, seat points) and its readers.

OSM data © OpenStreetMap contributors, under the Open Database License (ODbL 1.0).
"""

from data.loaders import (
    DATA_DIR,
    OSM_ATTRIBUTION,
    read_beijing_townships,
    read_county_seats,
    read_district_outlines_gcj02,
    read_taiyuan_lines,
    read_taiyuan_polygons,
)

__all__ = [
    "DATA_DIR",
    "OSM_ATTRIBUTION",
    "read_beijing_townships",
    "read_county_seats",
    "read_district_outlines_gcj02",
    "read_taiyuan_lines",
    "read_taiyuan_polygons",
]
