"""attempts that wait on a callback or a person; what steps reported back on the order;
flows' deadlines

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 17:00:00

A waiting attempt holds no lease: its deadline (``wait_until``) is found through a partial
index of the waiting attempts only, as queued and running ones are. A callback finds its
attempt by the sha256 of its token (unique).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WAITING = sa.text("state = 'waiting'")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "install_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_install_secrets")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wait_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("wait_kind", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("callback_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resolution", Json, nullable=True))
        batch_op.create_unique_constraint("uq_attempts_callback_token", ["callback_token"])
        batch_op.create_index(
            "ix_attempts_waiting",
            ["wait_until"],
            unique=False,
            sqlite_where=WAITING,
            postgresql_where=WAITING,
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_data", Json, nullable=True))
    with op.batch_alter_table("flow_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_table("install_secrets")
    with op.batch_alter_table("flow_versions", schema=None) as batch_op:
        batch_op.drop_column("deadline_ms")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("step_data")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_waiting")
        batch_op.drop_constraint("uq_attempts_callback_token", type_="unique")
        batch_op.drop_column("resolution")
        batch_op.drop_column("callback_token")
        batch_op.drop_column("wait_kind")
        batch_op.drop_column("wait_until")
