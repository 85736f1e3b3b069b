"""Write a district and its coverage to a GeoPackage so others can recheck the figures."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from geo import Coverage, District


def export_geopackage(district: District, cov: Coverage, out: Path) -> dict[str, int]:
    """Write layers ``nodes``, ``edges``, ``sites`` and ``cells``; return their row counts.

    ``sites`` carries where each position joins the network: ``edge_u``, ``edge_v``,
    ``edge_offset_m`` (metres from ``edge_u`` along the edge) and ``access_m``.
    """
    layers = export_layers(district, cov)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    for name, gdf in layers.items():
        gdf.to_file(out, layer=name, driver="GPKG")
    return {k: len(v) for k, v in layers.items()}


def export_layers(district: District, cov: Coverage) -> dict[str, gpd.GeoDataFrame]:
    """Make the layers :func:`export_geopackage` writes (also merged by ``coverage --all``)."""
    net = district.network
    nodes = gpd.GeoDataFrame(
        {
            "osmid": net.node_ids,
            "walk_minutes": cov.nodes["walk_minutes"].to_numpy(),
            "nearest_site": cov.nodes["nearest_site"].astype(str).to_numpy(),
            "inside": cov.nodes["inside"].to_numpy(),
        },
        geometry=district.nodes.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    edges = gpd.GeoDataFrame(
        {
            "u": district.edges["u"].to_numpy(),
            "v": district.edges["v"].to_numpy(),
            "key": district.edges["key"].to_numpy(),
            "length_m": district.edges["length"].to_numpy(),
            "highway": district.edges["highway"].astype(str).to_numpy(),
        },
        geometry=district.edges.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    pos = district.positions
    at = net.attach(pos.geometry.x.to_numpy(), pos.geometry.y.to_numpy())
    sites = gpd.GeoDataFrame(
        {
            "site_id": pos["site_id"].to_numpy(),
            "level": pos["level"].to_numpy(),
            "name": pos["name"].to_numpy(),
            "osm_id": pos["osm_id"].to_numpy(),
            "categories": pos["categories"].to_numpy(),
            "demo": pos["demo"].to_numpy(),
            "edge_u": net.node_ids[net.u[at.edge]],
            "edge_v": net.node_ids[net.v[at.edge]],
            "edge_key": district.edges["key"].to_numpy()[at.edge],
            "edge_offset_m": at.offset_m,
            "access_m": at.access_m,
        },
        geometry=pos.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    cells = district.cells.merge(cov.cells, left_on="cell_id", right_index=True)
    cells = cells.assign(nearest_site=cells["nearest_site"].astype(str))
    return {"nodes": nodes, "edges": edges, "sites": sites, "cells": cells}
