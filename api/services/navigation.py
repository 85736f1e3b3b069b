"""Hand a walk over to Amap (高德) or Baidu (百度) Maps, and find our own route to one position.

Positions are stored in WGS84; Amap reads GCJ-02 and Baidu BD-09, so the destination is moved
into each one's datum (:mod:`geo.datum`) before it goes into the link. The links follow the
providers' web URI APIs, which open the app on a phone when it is installed and the web map
otherwise:

* Amap, 路径规划: ``https://uri.amap.com/navigation?to=lon,lat,name&mode=walk&src=…
  &coordinate=gaode&callnative=1`` (lbs.amap.com/api/uri-api/guide/travel/route).
* Baidu, 公交、驾车、步行导航: ``https://api.map.baidu.com/direction?destination=latlng:lat,lon|
  name:…&mode=walking&coord_type=bd09ll&output=html&src=webapp.company.app``
  (lbsyun.baidu.com, 地图调起 URI API, Web 端). ``origin`` is given when the caller knows it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from api.services.dispatch_errors import NotFoundError
from api.services.nearest import nearest_positions
from geo import DEFAULT_WALK_M_PER_MIN, District
from geo.datum import Crs, from_wgs84

AMAP_NAVIGATION = "https://uri.amap.com/navigation"
BAIDU_DIRECTION = "https://api.map.baidu.com/direction"
#: Who calls, as each provider asks it to be named (Baidu: ``webapp.companyName.appName``).
AMAP_SRC = "practice-circle"
BAIDU_SRC = "webapp.practice-circle.map"
_DECIMALS = 6
# The separators of the providers' own mini-syntax (lon,lat,name; latlng:…|name:…) must not
# appear inside a name: they would cut it short or move the destination.
_SEPARATORS = re.compile(r"[,|:;&=#?\s]+")


class NoRouteError(NotFoundError):
    """The position cannot be reached on foot from the starting point (404 ``not_found``)."""


def _clean(name: str) -> str:
    text = _SEPARATORS.sub(" ", name).strip()
    return text[:60] or "目的地"


def _pair(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    x, y = from_wgs84(float(lon), float(lat), crs=crs)
    return round(float(x), _DECIMALS), round(float(y), _DECIMALS)


def _query(params: dict[str, str]) -> str:
    # Names are percent-encoded (UTF-8); the providers' separators stay readable.
    return urlencode(params, quote_via=quote, safe=",:|")


def links(
    lon: float,
    lat: float,
    *,
    name: str,
    origin: tuple[float, float] | None = None,
    origin_name: str = "我的位置",
    region: str | None = None,
) -> dict[str, Any]:
    """Return walking hand-off links to Amap and Baidu Maps for a WGS84 destination.

    Parameters
    ----------
    lon, lat
        The destination in WGS84 (as stored).
    name
        The destination's name as the other app shows it (its separators replaced).
    origin
        Where the walk starts, WGS84 ``(lon, lat)``; without it each app starts from the
        phone's own position.
    origin_name
        The start's name in the other app.
    region
        City or county the destination is in (Baidu's ``region``), e.g. the district.

    Returns
    -------
    dict
        ``amap`` and ``baidu`` (URLs), ``gcj02`` and ``bd09`` (the destination's ``[lon,
        lat]`` in each datum, 6 decimals).
    """
    label = _clean(name)
    glon, glat = _pair(lon, lat, Crs.GCJ02)
    blon, blat = _pair(lon, lat, Crs.BD09)
    amap: dict[str, str] = {}
    baidu: dict[str, str] = {}
    if origin is not None:
        start = _clean(origin_name)
        olon, olat = _pair(*origin, Crs.GCJ02)
        amap["from"] = f"{olon},{olat},{start}"
        olon, olat = _pair(*origin, Crs.BD09)
        baidu["origin"] = f"latlng:{olat},{olon}|name:{start}"
    amap.update({"to": f"{glon},{glat},{label}", "mode": "walk", "src": AMAP_SRC,
                 "coordinate": "gaode", "callnative": "1"})
    baidu.update({"destination": f"latlng:{blat},{blon}|name:{label}", "mode": "walking"})
    if region:
        baidu["region"] = _clean(region)
    baidu.update({"coord_type": "bd09ll", "output": "html", "src": BAIDU_SRC})
    return {
        "amap": f"{AMAP_NAVIGATION}?{_query(amap)}",
        "baidu": f"{BAIDU_DIRECTION}?{_query(baidu)}",
        "gcj02": [glon, glat],
        "bd09": [blon, blat],
    }


def route_to(
    district: District,
    site_id: str,
    lon: float,
    lat: float,
    *,
    walk_m_per_min: float = DEFAULT_WALK_M_PER_MIN,
) -> dict[str, Any]:
    """Return our walking route from a point to one open position, as 离我最近 draws it.

    The route and minutes are those of :func:`api.services.nearest.nearest_positions` (one
    walking rule for the whole service), asked for the one position (its ``site_id`` filter:
    the walk reaches every position, but only this one's route is drawn).

    Raises
    ------
    OutOfAreaError
        If the point is too far from every street.
    NotFoundError
        If the district has no open position ``site_id``, or (:class:`NoRouteError`) it is
        not reachable on foot from there.
    """
    if not (district.positions["site_id"].astype(str) == site_id).any():
        msg = f"没有编号为 {site_id} 的开放阵地"
        raise NotFoundError(msg)
    fc = nearest_positions(district, lon, lat, limit=1, walk_m_per_min=walk_m_per_min,
                           site_id=site_id)
    if not fc["features"]:
        msg = "从这里步行无法到达该阵地"
        raise NoRouteError(msg)
    return fc
