"""``/api/health`` tells the truth: a database that answers reads but refuses writes (a
read-only server or file, a full disk) is unhealthy, since no order could be accepted."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import make_url

from fabflow.store.repository import Store
from tests.integration.api.conftest import client_for


def _refuse_writes(store: Store) -> None:
    """Make the database refuse writes for every new connection, for real."""
    if store.is_sqlite:

        def query_only(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA query_only = ON")

        event.listen(store.engine, "connect", query_only)
    else:
        url = make_url(store.settings.effective_database_url)
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
    store.engine.dispose()  # connections opened before keep their old settings


async def test_health_is_503_while_the_database_refuses_writes(
    app: FastAPI, api_store: Store
) -> None:
    async with client_for(app, None) as anonymous:
        assert (await anonymous.get("/api/health")).status_code == 200
        _refuse_writes(api_store)
        refused = await anonymous.get("/api/health")
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "unhealthy"
    assert "read" in refused.json()["message"].lower()  # read-only / readonly
