"""Status webhooks: a tenant's endpoints (``endpoints``), the event types and bodies
(``events``, pure), and the outbox of deliveries (``outbox``)."""

from fabflow.store.webhooks.endpoints import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    update_webhook,
)
from fabflow.store.webhooks.events import EVENT_TYPES
from fabflow.store.webhooks.outbox import list_deliveries, resend

__all__ = [
    "EVENT_TYPES",
    "create_webhook",
    "delete_webhook",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "resend",
    "update_webhook",
]
