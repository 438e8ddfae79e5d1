"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL: a
table or index added to ``schema.py`` without its migration (or the other way) fails here,
before it fails on a shop's upgraded database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fabflow.store.repository import Store
from fabflow.store.schema import metadata


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
