"""The phone front door: phone sign-in, 所站 accounts, the dispatcher's workbench, evidence.

* ``users``: the keyed hash and masked form of the phone number one signs in with, and the
  position a ``station`` (所/站) account allocates for; the roles ``station`` and ``system``
  (the server's own moves, such as escalation).
* ``signin_codes``: one-time sign-in codes, hashed.
* ``service_requests``: a rejection reason, the request a duplicate was merged into, and the
  level (站/所/中心) and position answering for it since when; the states ``rejected`` and
  ``merged``.
* ``outbox``: who a message is worded for, and when delivery gave up (dead letter).
* ``evidence``: photos of a request, by content hash.

Widening a check's ``IN`` list on SQLite edits the table's SQL in place, as in 0004.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept here, not imported: a migration must not change when the models do.
OLD_ROLES = "('resident', 'dispatcher', 'team', 'admin', 'volunteer')"
NEW_ROLES = "('resident', 'dispatcher', 'team', 'admin', 'volunteer', 'station', 'system')"
OLD_STATES = "('submitted', 'dispatched', 'accepted', 'completed', 'reviewed', 'cancelled')"
NEW_STATES = ("('submitted', 'dispatched', 'accepted', 'completed', 'reviewed', 'cancelled', "
              "'rejected', 'merged')")


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _set_check(table: str, column: str, old: str, new: str) -> None:
    """Replace ``column IN old`` by ``column IN new`` in the table's check constraint."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f(f"ck_{table}_{column}"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_{column}"), table, f"{column} IN {new}")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    if f"{column} IN {old}" not in sql:
        msg = f"{table} has an unexpected {column} check: {sql}"
        raise RuntimeError(msg)
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(f"{column} IN {old}", f"{column} IN {new}"), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _add(table: str, *columns: sa.Column[object]) -> None:
    for column in columns:
        op.add_column(table, column)


def _drop(table: str, *columns: str) -> None:
    # SQLite (3.35+) drops a plain column in place; a batch copy of ``users`` would be refused
    # while other tables point at it.
    for column in columns:
        if op.get_bind().dialect.name == "sqlite":
            op.get_bind().exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
        else:
            op.drop_column(table, column)


def upgrade() -> None:
    """Add the columns and tables; allow the new role and states."""
    _set_check("users", "role", OLD_ROLES, NEW_ROLES)
    _set_check("service_requests", "state", OLD_STATES, NEW_STATES)
    _add("users", sa.Column("phone_hash", sa.String(64), nullable=True),
         sa.Column("phone_masked", sa.String(20), nullable=True),
         sa.Column("site_id", sa.String(64), nullable=True))
    op.create_index(op.f("ix_users_phone_hash"), "users", ["phone_hash"], unique=True)
    _add("service_requests", sa.Column("reject_reason", sa.Text(), nullable=True),
         sa.Column("merged_into", sa.Integer(), nullable=True),
         sa.Column("level", sa.String(16), nullable=True),
         sa.Column("area_site_id", sa.String(64), nullable=True),
         _when("level_since", nullable=True))
    _add("outbox", sa.Column("audience", sa.String(32), nullable=True),
         _when("failed_at", nullable=True))
    op.create_table(
        "signin_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_codes")),
    )
    op.create_index(op.f("ix_signin_codes_phone_hash"), "signin_codes", ["phone_hash"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["request_id"], ["service_requests.id"],
                                name=op.f("fk_evidence_request_id_service_requests")),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"],
                                name=op.f("fk_evidence_uploaded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("request_id", "sha256", name=op.f("uq_evidence_request_id")),
    )
    op.create_index(op.f("ix_evidence_request_id"), "evidence", ["request_id"])
    op.create_index(op.f("ix_evidence_sha256"), "evidence", ["sha256"])


def downgrade() -> None:
    """Drop them: rejected or merged requests cancelled, station and system users residents, off."""
    op.drop_table("evidence")
    op.drop_table("signin_codes")
    _drop("outbox", "failed_at", "audience")
    op.execute("UPDATE service_requests SET state = 'cancelled' "
               "WHERE state IN ('rejected', 'merged')")
    _drop("service_requests", "level_since", "area_site_id", "level", "merged_into",
          "reject_reason")
    op.drop_index(op.f("ix_users_phone_hash"), "users")
    # their moves stay in the history, so the accounts stay too: as residents, switched off
    op.execute("UPDATE users SET role = 'resident', active = false "
               "WHERE role IN ('station', 'system')")
    _drop("users", "site_id", "phone_masked", "phone_hash")
    _set_check("service_requests", "state", NEW_STATES, OLD_STATES)
    _set_check("users", "role", NEW_ROLES, OLD_ROLES)
