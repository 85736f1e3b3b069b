"""The database is the registry: office records, a version per district, the change history.

Positions gain address, opening hours, public phone, active (closed positions are kept),
source (``demo``, ``import`` or ``api``), OSM id and kind, and a row version for ``ETag``;
teams gain a leader contact and a row version. ``registry_versions`` holds one counter per
district: readers compare it to know when to reload. ``registry_history`` keeps who changed
what, when. Every addition is a plain column or table, so the downgrade drops them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _position_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("address", sa.String(300), nullable=True),
        sa.Column("opening_hours", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("source", sa.String(16), nullable=False, server_default="demo"),
        sa.Column("osm_id", sa.String(40), nullable=True),
        sa.Column("kind", sa.String(40), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False, server_default="1"),
    )


def _team_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("leader_contact", sa.String(40), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False, server_default="1"),
    )


def upgrade() -> None:
    """Add the registry columns, the version counters and the history table."""
    for column in _position_columns():
        op.add_column("positions", column)
    for column in _team_columns():
        op.add_column("teams", column)
    op.create_table(
        "registry_versions",
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("district", name=op.f("pk_registry_versions")),
    )
    op.create_table(
        "registry_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(96), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_history")),
    )
    op.create_index(op.f("ix_registry_history_entity_id"), "registry_history", ["entity_id"])
    op.execute("INSERT INTO registry_versions (district, version) "
               "SELECT DISTINCT district, 1 FROM positions")


def downgrade() -> None:
    """Drop the history, the counters and the added columns."""
    op.drop_index(op.f("ix_registry_history_entity_id"), table_name="registry_history")
    op.drop_table("registry_history")
    op.drop_table("registry_versions")
    for column in reversed(_team_columns()):
        op.drop_column("teams", column.name)
    for column in reversed(_position_columns()):
        op.drop_column("positions", column.name)
