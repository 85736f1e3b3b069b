"""Check-in and check-out, the hours and points ledgers, and the points store.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    ref = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{ref}"))


def upgrade() -> None:
    """Create attendance, hours_ledger, rewards, redemptions and points_ledger."""
    op.create_table(
        "attendance",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        _when("checkin_at"),
        sa.Column("checkin_walk_minutes", sa.Float(), nullable=False),
        _when("checkout_at", nullable=True),
        sa.Column("checkout_walk_minutes", sa.Float(), nullable=True),
        _fk("activity_id", "attendance", "activities.id"),
        _fk("volunteer_id", "attendance", "volunteers.id"),
        sa.PrimaryKeyConstraint("activity_id", "volunteer_id", name=op.f("pk_attendance")),
    )
    op.create_index(op.f("ix_attendance_volunteer_id"), "attendance", ["volunteer_id"])
    op.create_table(
        "hours_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.String(96), nullable=True),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        _when("created_at"),
        _when("decided_at", nullable=True),
        sa.CheckConstraint("kind IN ('activity', 'correction', 'backfill')",
                           name=op.f("ck_hours_ledger_kind")),
        sa.CheckConstraint("state IN ('approved', 'pending', 'rejected')",
                           name=op.f("ck_hours_ledger_state")),
        _fk("volunteer_id", "hours_ledger", "volunteers.id"),
        _fk("activity_id", "hours_ledger", "activities.id"),
        _fk("team_id", "hours_ledger", "teams.team_id"),
        _fk("created_by", "hours_ledger", "users.id"),
        _fk("decided_by", "hours_ledger", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hours_ledger")),
    )
    op.create_index(op.f("ix_hours_ledger_volunteer_id"), "hours_ledger", ["volunteer_id"])
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_points", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_rewards_stock")),
        sa.CheckConstraint("price_points >= 1", name=op.f("ck_rewards_price")),
        _fk("site_id", "rewards", "positions.site_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
    )
    op.create_index(op.f("ix_rewards_district"), "rewards", ["district"])
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        _when("created_at"),
        _when("picked_up_at", nullable=True),
        sa.Column("picked_up_by", sa.Integer(), nullable=True),
        _fk("reward_id", "redemptions", "rewards.id"),
        _fk("volunteer_id", "redemptions", "volunteers.id"),
        _fk("picked_up_by", "redemptions", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("code", name=op.f("uq_redemptions_code")),
    )
    op.create_index(op.f("ix_redemptions_reward_id"), "redemptions", ["reward_id"])
    op.create_index(op.f("ix_redemptions_volunteer_id"), "redemptions", ["volunteer_id"])
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("hours_entry_id", sa.Integer(), nullable=True),
        sa.Column("redemption_id", sa.Integer(), nullable=True),
        _when("created_at"),
        _fk("volunteer_id", "points_ledger", "volunteers.id"),
        _fk("hours_entry_id", "points_ledger", "hours_ledger.id"),
        _fk("redemption_id", "points_ledger", "redemptions.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_ledger")),
    )
    op.create_index(op.f("ix_points_ledger_volunteer_id"), "points_ledger", ["volunteer_id"])


def downgrade() -> None:
    """Drop them, newest first."""
    for table in ("points_ledger", "redemptions", "rewards", "hours_ledger", "attendance"):
        op.drop_table(table)
