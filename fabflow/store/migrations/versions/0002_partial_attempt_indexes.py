"""attempts: partial indexes on the open attempts only

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:00:00

The runnable index held every attempt ever made, keyed by state: each claim and each
finish moved an entry from one state's range to another's, and the index grew with the
history. Partial indexes hold only the attempts that are queued (by ``run_after``, for
claims) or running (by ``lease_until``, for expired leases): a finished attempt leaves
them, so they stay as small as the work in flight, and a finish writes one entry less.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

QUEUED = sa.text("state = 'queued'")
RUNNING = sa.text("state = 'running'")


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_runnable")
        batch_op.create_index(
            "ix_attempts_queued",
            ["run_after"],
            unique=False,
            sqlite_where=QUEUED,
            postgresql_where=QUEUED,
        )
        batch_op.create_index(
            "ix_attempts_running",
            ["lease_until"],
            unique=False,
            sqlite_where=RUNNING,
            postgresql_where=RUNNING,
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_running")
        batch_op.drop_index("ix_attempts_queued")
        batch_op.create_index("ix_attempts_runnable", ["state", "run_after"], unique=False)
