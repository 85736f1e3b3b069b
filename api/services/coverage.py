"""Coverage of a district as the CLI and the API report it."""

from __future__ import annotations

from typing import Any

import numpy as np

from api.services.analysis import analysis_for, analysis_of
from geo import DEFAULT_WALK_M_PER_MIN, Coverage, District
from geo.grid import CellPoints
from geo.registry import LEVELS


def cell_points(district: District) -> CellPoints:
    """Where each cell's residents are: the district's OSM housing (computed once)."""
    return analysis_for(district).cell_points


def district_coverage(
    district: District, *, minutes: float = 15.0, walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN
) -> Coverage:
    """Coverage of a district from all its positions, kept per pace and limit on its registry."""
    return analysis_of(district).coverage(minutes=minutes, walk_m_per_min=walk_m_per_min)


def coverage_summary(district: District, cov: Coverage, *, worst: int = 5) -> dict[str, Any]:
    """One JSON-ready object with the figures of ``practice-circle coverage``."""
    levels = district.positions["level"].value_counts()
    cells = cov.cells.join(district.cells.set_index("cell_id")[["lon", "lat"]])
    worst_cells = cells.sort_values("walk_m", ascending=False).head(worst)
    finite = cov.nodes.loc[cov.nodes["inside"], "walk_minutes"]
    finite = finite[np.isfinite(finite)]
    return {
        "district": district.name,
        "source": district.meta["source"],
        "extract_share": round(float(district.meta["extract_share"]), 4),
        "extract_note": district.meta["extract_note"],
        "network_km": round(float(district.meta["network_km"]), 1),
        "nodes": int(district.meta["nodes"]),
        "edges": int(district.meta["edges"]),
        "sites": len(district.positions),
        "sites_by_level": {lv: int(levels.get(lv, 0)) for lv in LEVELS},
        "teams": len(district.teams),
        "cells": len(district.cells),
        "minutes": cov.minutes,
        "walk_m_per_min": round(cov.walk_m_per_min, 3),
        "limit_m": round(cov.limit_m, 1),
        "covered_node_share": round(cov.covered_node_share(), 4),
        "covered_cell_share": round(cov.covered_cell_share(), 4),
        "median_node_minutes": round(float(finite.median()), 2) if len(finite) else None,
        "worst_cells": [
            {
                "cell_id": str(cid),
                "walk_minutes": round(float(r.walk_minutes), 1),
                "nearest_site": r.nearest_site,
                "lon": round(float(r.lon), 6),
                "lat": round(float(r.lat), 6),
            }
            for cid, r in worst_cells.iterrows()
        ],
        "demo_registry": bool(district.meta.get("demo_registry", True)),
        "attribution": district.meta["attribution"],
    }
