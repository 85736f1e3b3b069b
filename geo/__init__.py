"""The spatial model of the 15-minute practice service circle on a real OSM walking network."""

from geo._errors import (
    DemandFileError,
    OSMDataError,
    OutOfAreaError,
    SitingError,
    UnknownCategoryError,
    UnknownDistrictError,
    UnknownProfileError,
)
from geo.categories import CATEGORIES, CATEGORY_CODES, category
from geo.coverage import (
    DEFAULT_WALK_M_PER_MIN,
    MAX_WALK_M_PER_MIN,
    MIN_WALK_M_PER_MIN,
    Coverage,
    coverage,
    walk_minutes,
)
from geo.datum import Crs, from_wgs84, geojson_from_wgs84, to_wgs84
from geo.demand import cell_demand
from geo.district import (
    DEFAULT_DISTRICT,
    District,
    bundled_districts,
    cached_districts,
    get_district,
    import_osm,
    load_district,
)
from geo.grid import resident_points
from geo.network import WalkNetwork, is_walkable, walk_network
from geo.profiles import PROFILES, network_for_profile, profile
from geo.siting import coverage_with_extra_sites, recommend_sites
from geo.walk import node_walk

__all__ = [
    "CATEGORIES",
    "CATEGORY_CODES",
    "DEFAULT_DISTRICT",
    "DEFAULT_WALK_M_PER_MIN",
    "MAX_WALK_M_PER_MIN",
    "MIN_WALK_M_PER_MIN",
    "PROFILES",
    "Coverage",
    "Crs",
    "DemandFileError",
    "District",
    "OSMDataError",
    "OutOfAreaError",
    "SitingError",
    "UnknownCategoryError",
    "UnknownDistrictError",
    "UnknownProfileError",
    "WalkNetwork",
    "bundled_districts",
    "cached_districts",
    "category",
    "cell_demand",
    "coverage",
    "coverage_with_extra_sites",
    "from_wgs84",
    "geojson_from_wgs84",
    "get_district",
    "import_osm",
    "is_walkable",
    "load_district",
    "network_for_profile",
    "node_walk",
    "profile",
    "recommend_sites",
    "resident_points",
    "to_wgs84",
    "walk_minutes",
    "walk_network",
]
