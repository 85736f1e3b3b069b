"""The spatial model of the 15-minute practice service circle on a real OSM walking network."""

from geo._errors import OSMDataError, OutOfAreaError, UnknownCategoryError, UnknownDistrictError
from geo.categories import CATEGORIES, CATEGORY_CODES, category
from geo.coverage import DEFAULT_WALK_M_PER_MIN, Coverage, coverage, node_walk, walk_minutes
from geo.district import (
    DEFAULT_DISTRICT,
    District,
    bundled_districts,
    cached_districts,
    get_district,
    import_osm,
    load_district,
)
from geo.network import WalkNetwork, is_walkable, walk_network

__all__ = [
    "CATEGORIES",
    "CATEGORY_CODES",
    "DEFAULT_DISTRICT",
    "DEFAULT_WALK_M_PER_MIN",
    "Coverage",
    "District",
    "OSMDataError",
    "OutOfAreaError",
    "UnknownCategoryError",
    "UnknownDistrictError",
    "WalkNetwork",
    "bundled_districts",
    "cached_districts",
    "category",
    "coverage",
    "get_district",
    "import_osm",
    "is_walkable",
    "load_district",
    "node_walk",
    "walk_minutes",
    "walk_network",
]
