"""what each step returned, kept on the execution; tenants' secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:10:00

``executions.outputs`` holds each step's latest result by step id (a REST answer, the files
made, a callback's data), for later steps' templates and choices. ``tenant_secrets`` holds the
values templates read as ``secrets.NAME``, encrypted (Fernet) with ``FABFLOW_SECRET_KEY``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenant_secrets",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_tenant_secrets")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outputs", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("outputs")
    op.drop_table("tenant_secrets")
