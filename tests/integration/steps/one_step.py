"""A store with one flow of one step, for running an executor under the real worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fabflow.settings import Settings
from fabflow.store import orders
from fabflow.store.repository import Store


@dataclass
class OneStepShop:
    store: Store
    tenant: str

    @classmethod
    def open(
        cls, settings: Settings, step_id: str, step_type: str, options: dict[str, Any]
    ) -> OneStepShop:
        """The flow's one step times out after 300 ms and is not retried."""
        store = Store.open(settings)
        tenant = store.ensure_tenant("acme")
        step = {
            "stepDefinitionId": step_id,
            "type": step_type,
            "successStatus": "done",
            "timeout": 300,
            "retry": {"maxAttempts": 1},
            "options": options,
        }
        store.save_flow(tenant, "f", [step], "F")
        return cls(store, tenant)

    def new_order(self) -> str:
        order, _ = orders.create_order(
            self.store, self.tenant, {"customer": {"name": "Ada"}, "lines": []}, "f"
        )
        return str(order["id"])

    def execution(self, order_id: str) -> dict[str, Any]:
        return dict(orders.get_order(self.store, self.tenant, order_id)["execution"])
