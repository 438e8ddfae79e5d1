"""The queue's indexes hold the open attempts only, and what reads them counts right.

A finished attempt leaves the claim and lease indexes (partial indexes, migration 0002), so
claims and expired-lease checks read the work in flight, not the history. Queue depth (for
``/metrics`` and ``fabflow workers``) is counted from the same indexes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text, update

from fabflow.store import fastpath, orders, queue
from fabflow.store.queue import statements
from fabflow.store.repository import Store
from fabflow.store.schema import attempts
from tests.support import executors as test_steps


@pytest.fixture(autouse=True)
def _script_steps() -> Iterator[None]:
    with test_steps.installed():
        yield


def _orders(store: Store, tenant_name: str, n: int) -> str:
    tenant = store.ensure_tenant(tenant_name)
    flow = [{"stepDefinitionId": "a", "type": "test-script", "successStatus": "A", "options": {}}]
    store.save_flow(tenant, "f", flow, "F")
    for i in range(n):
        orders.create_order(store, tenant, {"customer": {"name": f"c{i}"}, "lines": []}, "f")
    return tenant


def _claim(store: Store, n: int) -> list[queue.Claim]:
    with store.write() as conn:
        return queue.claim(conn, "w1", n, time.time(), 30.0)


def test_queue_depth_counts_the_queued_and_running_attempts_of_each_tenant(store: Store) -> None:
    acme = _orders(store, "acme", 5)
    other = _orders(store, "other", 2)
    held = _claim(store, 3)  # oldest first: three of acme's
    assert {c.tenant_id for c in held} == {acme}
    with store.write() as conn:  # one of them ends: it leaves both counts
        conn.execute(
            update(attempts).where(attempts.c.id == held[0].attempt_id), {"state": "success"}
        )
    assert orders.queue_depth(store) == {"queued": 4, "running": 2}
    with store.read() as conn:
        assert queue.depth(conn, acme) == {"queued": 2, "running": 2}
        assert queue.depth(conn, other) == {"queued": 2, "running": 0}


def test_claims_and_lease_checks_read_only_the_open_attempts(store: Store) -> None:
    _orders(store, "acme", 3)
    with store.read() as conn:
        definitions = _index_definitions(conn)
    assert "ix_attempts_runnable" not in definitions
    assert "'queued'" in definitions["ix_attempts_queued"]
    assert "'running'" in definitions["ix_attempts_running"]
    if not store.is_sqlite:
        return  # PostgreSQL's planner picks by table statistics; the definitions are the point
    with store.read() as conn:
        for statement, index in (
            (statements.CLAIM_QUEUED, "ix_attempts_queued"),
            (statements.EXPIRED, "ix_attempts_running"),
        ):
            raw = fastpath._raw(statement, conn.dialect)
            values = [None] * raw.sql.count("?")
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {raw.sql}", tuple(values))
            )
            assert f"USING INDEX {index}" in plan or f"COVERING INDEX {index}" in plan, plan


def _index_definitions(conn: Connection) -> dict[str, str]:
    if fastpath.is_sqlite(conn):
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attempts'"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'attempts'"
    return {name: sql or "" for name, sql in conn.execute(text(query))}
