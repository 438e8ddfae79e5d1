"""orders' search text folded: accents removed, so that "zoe" finds "Zoë"

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 13:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fabflow.store.orders.search import fold

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 2000
_orders = sa.table("orders", sa.column("id", sa.String), sa.column("search", sa.Text))


def upgrade() -> None:
    """Fold the text of the orders stored before: only those with a non-ASCII letter change
    (the rest was lowercased already), read by id in batches so memory stays flat."""
    conn = op.get_bind()
    last = ""
    while True:
        rows = conn.execute(
            sa.select(_orders.c.id, _orders.c.search)
            .where(_orders.c.id > last)
            .order_by(_orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changed = [{"k": i, "s": fold(s)} for i, s in rows if fold(s) != s]
        if changed:
            conn.execute(
                sa.update(_orders)
                .where(_orders.c.id == sa.bindparam("k"))
                .values(search=sa.bindparam("s")),
                changed,
            )
        last = rows[-1][0]


def downgrade() -> None:
    pass  # folded text is lowercased text: the earlier code reads it as it did
