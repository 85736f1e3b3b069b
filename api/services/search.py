"""Find open positions by name, address or pinyin (全拼 and 首字母: ``xdq`` finds 小店区…).

The index is built once per registry version of a district (a few hundred positions at most)
from the snapshot the request was served: an edit makes a new version, so the index is never
stale. One row per position; positions sharing a name are told apart by their address or the
position they belong to.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pypinyin import Style, lazy_pinyin

from api.services.analysis import analysis_of
from geo import District
from geo.registry import LEVELS

#: Longest query and most rows (the route enforces both).
MAX_QUERY = 40
MAX_LIMIT = 20
_LEVEL_ORDER = {code: i for i, code in enumerate(LEVELS)}


@dataclass(frozen=True)
class _Entry:
    site_id: str
    name: str
    level: str
    address: str | None
    parent_name: str | None
    lon: float
    lat: float
    name_key: str
    address_key: str
    initials: str
    spelled: str


def _fold(text: str) -> str:
    """Fold for matching: NFKC (full-width letters and digits), lower case, no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _pinyin(text: str, style: Style) -> str:
    # Characters without a reading (letters, digits) come through as they are.
    return _fold("".join(lazy_pinyin(text, style=style, errors="default", strict=False)))


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _build(district: District) -> list[_Entry]:
    pos = district.positions
    names = dict(zip(pos["site_id"].astype(str), pos["name"].astype(str), strict=True))
    has_address = "address" in pos.columns
    entries = []
    for i, row in enumerate(pos.itertuples(index=False)):
        name = str(row.name)
        address = _text(pos["address"].iloc[i]) if has_address else None
        parent = _text(row.parent_id)
        entries.append(_Entry(
            site_id=str(row.site_id), name=name, level=str(row.level), address=address,
            parent_name=names.get(parent) if parent else None,
            lon=round(float(row.geometry.x), 6), lat=round(float(row.geometry.y), 6),
            name_key=_fold(name), address_key=_fold(address or ""),
            initials=_pinyin(name, Style.FIRST_LETTER), spelled=_pinyin(name, Style.NORMAL),
        ))
    return entries


def _index(district: District) -> list[_Entry]:
    return analysis_of(district).once("search_index", lambda: _build(district))


def _rank(e: _Entry, q: str) -> tuple[int, str] | None:
    """Return how well an entry matches (lower is better) and what matched, or ``None``."""
    if e.name_key == q:
        return 0, "name"
    if e.name_key.startswith(q):
        return 1, "name"
    if q in e.name_key:
        return 2, "name"
    if q.isascii():
        if q in (e.initials, e.spelled):
            return 3, "pinyin"
        if e.initials.startswith(q) or e.spelled.startswith(q):
            return 4, "pinyin"
        if q in e.initials or q in e.spelled:
            return 5, "pinyin"
    if q in e.address_key:
        return 6, "address"
    return None


def search_positions(district: District, q: str, *, limit: int = 10) -> dict[str, Any]:
    """Return the open positions matching ``q``, best first, one row per position.

    Matches, in this order: the whole name, the start of the name, a part of the name, the
    whole of the name's pinyin initials or full pinyin, the start of either, a part of either,
    a part of the address. Case, width and spaces are ignored. Ties go to the higher level,
    then the name.

    Parameters
    ----------
    district
        The district at the registry version served.
    q
        What the resident typed (1-40 characters).
    limit
        Rows to return at most.
    """
    key = _fold(q)
    found: list[tuple[tuple[int, int, str, str], _Entry, str]] = []
    for e in _index(district) if key else []:
        hit = _rank(e, key)
        if hit is not None:
            found.append(((hit[0], _LEVEL_ORDER.get(e.level, 9), e.name, e.site_id), e, hit[1]))
    found.sort(key=lambda t: t[0])
    seen: set[str] = set()
    items = []
    for _, e, matched in found:
        if e.site_id in seen:  # one row per position, whatever else it matched
            continue
        seen.add(e.site_id)
        items.append({
            "site_id": e.site_id, "name": e.name, "level": e.level,
            "level_zh": LEVELS.get(e.level, e.level), "address": e.address,
            "parent_name": e.parent_name, "lon": e.lon, "lat": e.lat, "matched": matched,
        })
    return {"query": q, "total": len(items), "items": items[:limit]}
