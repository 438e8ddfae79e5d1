"""audit events: flows saved and archived, API keys created and revoked, bulk actions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("by", sa.String(length=200), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_tenant", "audit_events", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_tenant", table_name="audit_events")
    op.drop_table("audit_events")
