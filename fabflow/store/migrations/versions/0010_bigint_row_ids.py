"""64-bit ids for the tables that grow with every step: attempts, status history, events,
webhook deliveries and audit events (PostgreSQL; SQLite's rowids are 64-bit already)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("attempts", "status_history", "events", "webhook_deliveries", "audit_events")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        # The column, then its sequence: a serial's sequence is itself AS integer.
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE BIGINT")
        op.execute(
            f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS BIGINT', "
            f"pg_get_serial_sequence('{table}', 'id')); END $$"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(
            f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS INTEGER', "
            f"pg_get_serial_sequence('{table}', 'id')); END $$"
        )
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE INTEGER")
