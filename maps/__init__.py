"""Draw the practice map: a Chinese-first, offline folium page with a basemap from OSM data."""

from maps.assets import missing_assets
from maps.basemap import Basemap, district_basemap
from maps.page import build_map, build_page

__all__ = ["Basemap", "build_map", "build_page", "district_basemap", "missing_assets"]
