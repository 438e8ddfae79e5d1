"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL: a
table or index added to ``schema.py`` without its migration (or the other way) fails here,
before it fails on a shop's upgraded database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text

from fabflow.store.repository import Store
from fabflow.store.schema import events, metadata


def test_the_migrated_database_matches_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_a_table_left_out_of_the_migrations_is_noticed(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE web_sessions")
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d[0] for d in differences] == ["add_table", "add_index"]


def test_event_ids_go_past_32_bits(store: Store) -> None:
    """Events, attempts and the like get an id per step run: a 32-bit serial would stop every
    order after 2.1 billion of them."""
    far = 2**40
    row = {"tenant_id": "t", "order_id": "o", "kind": "k", "data": {}, "at": 0.0}
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('events', 'id'), :n)"), {"n": far}
            )
        else:
            conn.execute(insert(events), {**row, "id": far})
        conn.execute(insert(events), row)
        newest = conn.execute(select(events.c.id).order_by(events.c.id.desc()).limit(1)).scalar()
    assert newest == far + 1
