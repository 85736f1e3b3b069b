"""Volunteers and activities: profiles, team membership, activities and their sign-ups.

Adds the role ``volunteer`` to the users' role check. PostgreSQL replaces the constraint.
SQLite cannot alter a constraint, and copying ``users`` (Alembic's batch mode) is refused
while other tables point at it; widening an ``IN`` list changes no stored row, so the
migration edits the table's SQL in place, the procedure SQLite documents for such changes
("Making Other Kinds Of Table Schema Changes"): ``writable_schema`` plus a bumped
``schema_version``, in the migration's transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept here, not imported: a migration must not change when the models do.
OLD_ROLES = "('resident', 'dispatcher', 'team', 'admin')"
NEW_ROLES = "('resident', 'dispatcher', 'team', 'admin', 'volunteer')"


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _set_roles(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
        op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN {new}")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'").scalar_one()
    if f"role IN {old}" not in sql:
        msg = f"users table has an unexpected role check: {sql}"
        raise RuntimeError(msg)
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'users'",
        (sql.replace(f"role IN {old}", f"role IN {new}"),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    """Create the volunteer and activity tables; allow the role ``volunteer``."""
    _set_roles(OLD_ROLES, NEW_ROLES)
    op.create_table(
        "volunteers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("id_card_cipher", sa.Text(), nullable=True),
        sa.Column("id_card_masked", sa.String(20), nullable=True),
        sa.Column("categories", sa.String(300), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_volunteers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteers")),
        sa.UniqueConstraint("user_id", name=op.f("uq_volunteers_user_id")),
        sa.UniqueConstraint("district", "phone", name=op.f("uq_volunteers_district")),
    )
    op.create_index(op.f("ix_volunteers_district"), "volunteers", ["district"])
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(96), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("leader", sa.Boolean(), nullable=False),
        _when("joined_at"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.team_id"],
                                name=op.f("fk_team_members_team_id_teams")),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.id"],
                                name=op.f("fk_team_members_volunteer_id_volunteers")),
        sa.PrimaryKeyConstraint("team_id", "volunteer_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_volunteer_id"), "team_members", ["volunteer_id"])
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(96), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("theme", sa.String(100), nullable=True),
        _when("starts_at"),
        _when("ends_at"),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_activities_capacity")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_activities_window")),
        sa.CheckConstraint("confirmed BETWEEN 0 AND capacity",
                           name=op.f("ck_activities_confirmed")),
        sa.ForeignKeyConstraint(["site_id"], ["positions.site_id"],
                                name=op.f("fk_activities_site_id_positions")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.team_id"],
                                name=op.f("fk_activities_team_id_teams")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_activities_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index("ix_activities_district_starts", "activities", ["district", "starts_at"])
    op.create_table(
        "activity_signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint("state IN ('confirmed', 'waitlisted', 'cancelled')",
                           name=op.f("ck_activity_signups_state")),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"],
                                name=op.f("fk_activity_signups_activity_id_activities")),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.id"],
                                name=op.f("fk_activity_signups_volunteer_id_volunteers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_signups")),
        sa.UniqueConstraint("activity_id", "volunteer_id",
                            name=op.f("uq_activity_signups_activity_id")),
    )
    op.create_index(op.f("ix_activity_signups_activity_id"), "activity_signups",
                    ["activity_id"])
    op.create_index(op.f("ix_activity_signups_volunteer_id"), "activity_signups",
                    ["volunteer_id"])


def downgrade() -> None:
    """Drop the new tables (volunteer users go too) and the role ``volunteer``."""
    op.drop_table("activity_signups")
    op.drop_table("activities")
    op.drop_table("team_members")
    op.drop_table("volunteers")
    op.execute("DELETE FROM users WHERE role = 'volunteer'")
    _set_roles(NEW_ROLES, OLD_ROLES)
