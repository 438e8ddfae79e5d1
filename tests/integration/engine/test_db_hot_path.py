"""The SQLite hot path (``db.fetch``): statements compiled once, never confused with another."""

from __future__ import annotations

import gc

from sqlalchemy import literal, select

from fabflow.store import db
from fabflow.store.repository import Store


def test_fresh_statements_each_get_their_own_sql(store: Store) -> None:
    # Statements built and dropped one after another: CPython reuses their ids, and the cache
    # is keyed by id, so each answer proves it ran its own statement, not a cached one.
    with store.read() as conn:
        for i in range(200):
            statement = select(literal(i).label("v"), literal(f"s{i}").label("s"))
            assert db.fetch(conn, statement, {}) == [{"v": i, "s": f"s{i}"}]
            del statement
            gc.collect(0)
