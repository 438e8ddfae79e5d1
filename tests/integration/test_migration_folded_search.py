"""Migration 0011 folds the search text of orders stored before it, so that a search for
"zoe" finds the "Zoë" of an order taken before the upgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import update

from fabflow.store import orders
from fabflow.store.repository import Store
from fabflow.store.schema import orders as orders_table

STEP = {"stepDefinitionId": "s", "type": "test-script", "successStatus": "Done", "options": {}}


def test_orders_stored_before_are_found_without_their_accents(store: Store) -> None:
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", [STEP], "F")
    body = {"customer": {"name": "Zoë Müller"}, "lines": []}
    order_id = str(orders.create_order(store, tenant, body, "f")[0]["id"])
    with store.write() as conn:  # as the code before 0011 stored it: lowercased only
        old = f"{order_id}  zoë müller "
        conn.execute(update(orders_table).where(orders_table.c.id == order_id).values(search=old))
    found, _ = orders.list_orders(store, tenant, orders.OrderFilter(q="zoe"))
    assert found == []

    migration = importlib.import_module("fabflow.store.migrations.versions.0011_folded_search")
    with store.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        migration.upgrade()

    for typed in ("zoe", "Zoë", "MULLER"):
        found, _ = orders.list_orders(store, tenant, orders.OrderFilter(q=typed))
        assert [o["id"] for o in found] == [order_id], typed
