"""``fabflow orders cancel|retry`` without an order id acts on every order its filters keep."""

from __future__ import annotations

import json

import pytest

from fabflow.cli.app import EXIT_INVALID_INPUT
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.integration.cli.conftest import STEP, fabflow


@pytest.mark.usefixtures("env")
def test_cancel_every_pending_order_of_a_flow(store: Store) -> None:
    acme = store.ensure_tenant("acme")
    store.save_flow(acme, "erp", [STEP], "ERP")
    store.save_flow(acme, "mes", [STEP], "MES")
    erp = [orders.create_order(store, acme, {"lines": []}, "erp")[0]["id"] for _ in range(3)]
    mes = orders.create_order(store, acme, {"lines": []}, "mes")[0]["id"]
    done = fabflow("orders", "cancel", "--tenant", "acme", "--state", "pending", "--flow", "erp")
    assert done.exit_code == 0, done.output
    assert "3 of 3 orders cancelled" in done.stdout
    for order_id in erp:
        order = orders.get_order(store, acme, order_id)
        assert order["execution"]["state"] == "cancelled"
    assert orders.get_order(store, acme, mes)["execution"]["state"] == "pending"
    events = orders.order_events(store, acme, erp[0])
    assert [e["data"].get("by") for e in events if e["kind"] == "cancelled"] == ["cli"]
    again = fabflow("orders", "retry", "--tenant", "acme", "--flow", "erp", "--json")
    assert json.loads(again.stdout)["actedCount"] == 3
    assert fabflow("orders", "retry", "--tenant", "acme").exit_code == EXIT_INVALID_INPUT
