"""Token lifecycle: when each user's token was issued (it expires) and whether it was revoked.

Existing tokens count as issued when their user was created. SQLite can add a NOT NULL column
only with a constant default, so ``token_issued_at`` gets the epoch as its server default on
both backends (a row written without an issue time holds an expired token) and is then filled
from ``created_at``. Both columns are plain additions, so the downgrade drops them (SQLite
3.35+ drops columns in place; the users table is never copied, which its foreign keys would
forbid).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept here, not imported: a migration must not change when the models do.
TOKEN_EPOCH = "1970-01-01 00:00:00"


def upgrade() -> None:
    """Add ``users.token_issued_at`` (filled from ``created_at``) and ``users.token_revoked_at``."""
    op.add_column(
        "users",
        sa.Column("token_issued_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text(f"'{TOKEN_EPOCH}'")),
    )
    op.add_column("users", sa.Column("token_revoked_at", sa.DateTime(timezone=True),
                                     nullable=True))
    op.execute("UPDATE users SET token_issued_at = created_at")


def downgrade() -> None:
    """Drop the two columns."""
    op.drop_column("users", "token_revoked_at")
    op.drop_column("users", "token_issued_at")
