"""web sessions: the UI's signed-in browsers in the store, shared by every API node

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    op.create_index("ix_web_sessions_seen", "web_sessions", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_seen", table_name="web_sessions")
    op.drop_table("web_sessions")
