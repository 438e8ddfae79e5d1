"""products made from OpenSCAD models: one row per version

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:20:00

``product_versions`` holds each version of a tenant's product: its parameters' JSON Schema, its
parts, the main file's text and where its files' archive lies in the file store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "product_versions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("main", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("parameters", Json, nullable=False),
        sa.Column("parts", Json, nullable=False),
        sa.Column("files", Json, nullable=False),
        sa.Column("archive_key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", "version", name=op.f("pk_product_versions")),
    )


def downgrade() -> None:
    op.drop_table("product_versions")
