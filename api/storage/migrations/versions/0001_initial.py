"""Initial schema: positions, teams, users, service requests and their audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geoalchemy2.alembic_helpers  # noqa: F401  (registers op.create_geospatial_*)
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "('submitted', 'dispatched', 'accepted', 'completed', 'reviewed', 'cancelled')"
ROLES = "('resident', 'dispatcher', 'team', 'admin')"
#: ``op`` with the operations GeoAlchemy2 registers at import (invisible to type checkers).
geo_op: Any = op


def _point() -> Geometry:
    return Geometry(geometry_type="POINT", srid=4326, spatial_index=False, nullable=False)


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    """Create every table with its indexes (a GiST / SpatiaLite R*Tree on each geometry)."""
    geo_op.create_geospatial_table(
        "positions",
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("categories", sa.String(300), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("geom", _point(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_positions")),
    )
    geo_op.create_geospatial_index(
        "idx_positions_geom", "positions", ["geom"], unique=False, postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_positions_district"), "positions", ["district"])

    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(96), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("categories", sa.String(300), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_teams_capacity")),
        sa.ForeignKeyConstraint(
            ["site_id"], ["positions.site_id"], name=op.f("fk_teams_site_id_positions")
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_teams")),
    )
    op.create_index(op.f("ix_teams_district"), "teams", ["district"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.CheckConstraint(
            "(role = 'team') = (team_id IS NOT NULL)", name=op.f("ck_users_team_role")
        ),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_users_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )

    geo_op.create_geospatial_table(
        "service_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(64), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("geom", _point(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_service_requests_state")),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["users.id"], name=op.f("fk_service_requests_resident_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_service_requests_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_requests")),
    )
    geo_op.create_geospatial_index(
        "idx_service_requests_geom", "service_requests", ["geom"], unique=False,
        postgresql_using="gist", postgresql_ops={},
    )
    op.create_index(op.f("ix_service_requests_district"), "service_requests", ["district"])
    op.create_index(op.f("ix_service_requests_resident_id"), "service_requests", ["resident_id"])
    op.create_index("ix_service_requests_state_team", "service_requests", ["state", "team_id"])

    op.create_table(
        "request_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        _when("at"),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_request_transitions_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name=op.f("fk_request_transitions_request_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_request_transitions_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_transitions")),
    )
    op.create_index(
        op.f("ix_request_transitions_request_id"), "request_transitions", ["request_id"]
    )

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _when("created_at"),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_reviews_stars")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name=op.f("fk_reviews_request_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["users.id"], name=op.f("fk_reviews_resident_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_reviews_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("request_id", name=op.f("uq_reviews_request_id")),
    )
    op.create_index(op.f("ix_reviews_team_id"), "reviews", ["team_id"])

    op.create_table(
        "volunteer_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name=op.f("fk_volunteer_points_request_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_volunteer_points_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_points")),
    )
    op.create_index(op.f("ix_volunteer_points_team_id"), "volunteer_points", ["team_id"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("volunteer_points", "reviews", "request_transitions"):
        op.drop_table(table)
    geo_op.drop_geospatial_table("service_requests")
    op.drop_table("idempotency_keys")
    op.drop_table("users")
    op.drop_table("teams")
    geo_op.drop_geospatial_table("positions")
