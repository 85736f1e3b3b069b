"""Volunteer points and star levels: what a team earns, and the leaderboard of a district.

Teams earn 10 points per hour served and 2 per review star (a ledger of
:class:`~api.storage.models.PointsEntry` rows written by the lifecycle); star levels follow
total hours served (星级志愿服务: 100/300/600/1000/1500 hours).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from api.storage.models import PointsEntry, Review, Team
from geo import District

#: Volunteer points for each hour served and for each star of a review.
POINTS_PER_HOUR = 10
POINTS_PER_STAR = 2
#: Total hours for star levels 1-5 (星级志愿服务: 100/300/600/1000/1500 hours).
STAR_HOURS: tuple[int, ...] = (100, 300, 600, 1000, 1500)
STAR_ZH: tuple[str, ...] = ("未评星", "一星级", "二星级", "三星级", "四星级", "五星级")


def hours_points(hours: float) -> int:
    """Return the points for hours served."""
    return round(hours * POINTS_PER_HOUR)


def review_points(stars: int) -> int:
    """Return the points for a review's stars."""
    return stars * POINTS_PER_STAR


def star_level(hours: float) -> int:
    """Return the star level 0-5 for total hours served."""
    return sum(hours >= h for h in STAR_HOURS)


def leaderboard(session: Session, district: District, *, limit: int = 20) -> dict[str, Any]:
    """Teams by volunteer points (10 per hour served, 2 per review star), with star levels."""
    pts = (
        select(
            PointsEntry.team_id.label("team_id"),
            func.sum(PointsEntry.points).label("points"),
            func.sum(PointsEntry.hours).label("hours"),
            func.sum(case((PointsEntry.reason == "complete", 1), else_=0)).label("completed"),
        )
        .group_by(PointsEntry.team_id)
        .subquery()
    )
    rev = (
        select(
            Review.team_id.label("team_id"),
            func.count().label("reviews"),
            func.avg(Review.stars).label("rating"),
        )
        .group_by(Review.team_id)
        .subquery()
    )
    points = func.coalesce(pts.c.points, 0)
    hours = func.coalesce(pts.c.hours, 0.0)
    rows = session.execute(
        select(Team.team_id, Team.name, Team.categories, Team.site_id, points, hours,
               func.coalesce(pts.c.completed, 0), func.coalesce(rev.c.reviews, 0), rev.c.rating)
        .outerjoin(pts, pts.c.team_id == Team.team_id)
        .outerjoin(rev, rev.c.team_id == Team.team_id)
        .where(Team.district == district.name)
        .order_by(points.desc(), hours.desc(), Team.team_id)
        .limit(limit)
    ).all()
    teams = []
    for i, (tid, name, cats, site, p, h, done, n_rev, rating) in enumerate(rows, start=1):
        level = star_level(float(h))
        teams.append({
            "rank": i, "team_id": tid, "name": name, "categories": cats.split(","),
            "site_id": site, "points": int(p), "hours": round(float(h), 2),
            "completed": int(done), "reviews": int(n_rev),
            "rating": None if rating is None else round(float(rating), 2),
            "star_level": level, "star_level_zh": STAR_ZH[level],
        })
    return {
        "district": district.name,
        "teams": teams,
        "rules": (
            f"每服务 1 小时 {POINTS_PER_HOUR} 分，每获评 1 星 {POINTS_PER_STAR} 分；"
            f"星级按累计服务时长：{'/'.join(map(str, STAR_HOURS))} 小时为一至五星"
        ),
    }
