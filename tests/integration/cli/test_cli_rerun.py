"""``fabflow orders rerun --from STEP`` with a fix: ``--flow-version`` and ``--data``."""

from __future__ import annotations

import pytest

from fabflow.cli.app import EXIT_INVALID_INPUT
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.integration.cli.conftest import STEP, fabflow


@pytest.mark.usefixtures("env")
def test_rerun_on_the_latest_version_with_a_data_patch(store: Store) -> None:
    acme = store.ensure_tenant("acme")
    store.save_flow(acme, "erp", [STEP], "ERP")
    order_id = orders.create_order(store, acme, {"lines": [], "data": {"a": 1}}, "erp")[0]["id"]
    orders.cancel(store, acme, order_id)
    store.save_flow(acme, "erp", [{**STEP, "successStatus": "Told again"}], "ERP")

    args = ("orders", "rerun", order_id, "--from", "tell", "--tenant", "acme")
    bad = fabflow(*args, "--flow-version", "newest")
    assert bad.exit_code != 0 and "--flow-version" in bad.output
    not_json = fabflow(*args, "--data", "{a: 1")
    assert not_json.exit_code != 0 and "not JSON" in not_json.output
    missing = fabflow(*args, "--flow-version", "7")
    assert missing.exit_code == EXIT_INVALID_INPUT, missing.output
    assert orders.get_order(store, acme, order_id)["execution"]["state"] == "cancelled"

    done = fabflow(*args, "--flow-version", "latest", "--data", '{"a": null, "b": "x"}')
    assert done.exit_code == 0, done.output
    order = orders.get_order(store, acme, order_id)
    assert order["flowVersion"] == 2 and order["data"] == {"b": "x"}
    event = next(e for e in orders.order_events(store, acme, order_id) if e["kind"] == "rerun")
    assert event["data"]["flowVersion"] == {"from": 1, "to": 2}
    assert event["data"]["by"] == "cli"
