"""A tenant's webhooks: add, list, change, remove. Every read and write names the tenant, and
another tenant's webhook is NotFound, as one that does not exist."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from fabflow.errors import InvalidInput, NotFound, Problem
from fabflow.flows.options import check_http_uri
from fabflow.ids import new_id
from fabflow.resources import iso
from fabflow.store.repository import Store
from fabflow.store.schema import events, webhook_deliveries, webhooks
from fabflow.store.webhooks.events import EVENT_TYPES

SECRET_PREFIX = "whsec_"
MAX_DESCRIPTION = 500


def check_url(url: Any, pointer: str = "/url") -> list[Problem]:
    """Problems of a webhook's URL: an absolute http(s) URL, as a REST step's ``uri``."""
    if not isinstance(url, str):
        return [Problem(pointer, "must be a string: the URL fabflow POSTs each event to")]
    try:
        check_http_uri(url)
    except ValueError as exc:
        return [Problem(pointer, str(exc))]
    return [] if len(url) <= 2000 else [Problem(pointer, "must be at most 2000 characters")]


def check_events(types: Any, pointer: str = "/events") -> list[Problem]:
    """Problems of a list of event types: non-empty, each one of ``EVENT_TYPES``."""
    allowed = ", ".join(EVENT_TYPES)
    if not isinstance(types, list) or not types:
        return [Problem(pointer, f"must be a non-empty list of event types: {allowed}")]
    return [
        Problem(f"{pointer}/{i}", f"unknown event type {t!r}; the event types are: {allowed}")
        for i, t in enumerate(types)
        if t not in EVENT_TYPES
    ]


def _refuse(problems: list[Problem]) -> None:
    if problems:
        first = problems[0]
        raise InvalidInput(f"invalid webhook: {first.pointer}: {first.message}", problems)


def create_webhook(
    store: Store, tenant_id: str, url: Any, types: Any, description: Any = ""
) -> dict[str, Any]:
    """A new enabled webhook; the result holds its signing ``secret`` (shown this once). It
    hears of events recorded from now on."""
    _refuse(check_url(url) + check_events(types) + _check_description(description))
    now = time.time()
    row = {
        "id": new_id("whk"),
        "tenant_id": tenant_id,
        "url": url,
        "events": list(dict.fromkeys(types)),
        "description": description,
        "secret": SECRET_PREFIX + secrets.token_urlsafe(32),
        "enabled": True,
        "created_at": now,
        "updated_at": now,
    }
    with store.write() as conn:
        row["after_event"] = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
        conn.execute(insert(webhooks).values(**row))
    return webhook_json(row) | {"secret": row["secret"]}


def _check_description(description: Any) -> list[Problem]:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        return [Problem("/description", f"must be a string of at most {MAX_DESCRIPTION} chars")]
    return []


def webhook_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A webhook as the API shows it (never its secret)."""
    return {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["events"]),
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def list_webhooks(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    query = select(webhooks).where(webhooks.c.tenant_id == tenant_id).order_by(webhooks.c.id)
    with store.read() as conn:
        return [webhook_json(r) for r in conn.execute(query).mappings()]


def get_webhook(store: Store, tenant_id: str, webhook_id: str) -> dict[str, Any]:
    with store.read() as conn:
        return webhook_json(webhook_row(conn, tenant_id, webhook_id))


def webhook_row(conn: Connection, tenant_id: str, webhook_id: str) -> Mapping[Any, Any]:
    query = select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.tenant_id == tenant_id)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}")
    return row


def update_webhook(
    store: Store, tenant_id: str, webhook_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Change ``enabled``, ``events``, ``url`` or ``description`` (the keys given)."""
    problems = [Problem(f"/{k}", "unknown field") for k in changes if k not in _CHANGEABLE]
    if "enabled" in changes and not isinstance(changes["enabled"], bool):
        problems.append(Problem("/enabled", "must be true or false"))
    if "events" in changes:
        problems += check_events(changes["events"])
    if "url" in changes:
        problems += check_url(changes["url"])
    if "description" in changes:
        problems += _check_description(changes["description"])
    _refuse(problems)
    values = dict(changes) | {"updated_at": time.time()}
    if "events" in values:
        values["events"] = list(dict.fromkeys(values["events"]))
    with store.write() as conn:
        webhook_row(conn, tenant_id, webhook_id)
        conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
        return webhook_json(webhook_row(conn, tenant_id, webhook_id))


_CHANGEABLE = ("enabled", "events", "url", "description")


def delete_webhook(store: Store, tenant_id: str, webhook_id: str) -> None:
    """Remove the webhook and its delivery log (what was not sent yet is not sent)."""
    with store.write() as conn:
        webhook_row(conn, tenant_id, webhook_id)
        conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
        )
        conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
