"""The SQLite hot path: statements compiled once (``fastpath.fetch``), never confused with another;
a connection that must not wait for the lock (``queue.port.connect_no_wait``)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import JSON, bindparam, insert, literal, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from fabflow.settings import Settings
from fabflow.store import db, fastpath
from fabflow.store.queue.port import connect_no_wait, is_busy
from fabflow.store.repository import Store
from fabflow.store.schema import tenants

_INSERT = insert(tenants)


def _tenant(name: str) -> dict[str, object]:
    return {"id": f"t_{name}", "name": name, "created_at": 0.0}


def test_fresh_statements_each_get_their_own_sql(store: Store) -> None:
    # Statements built and dropped one after another: CPython reuses their ids, and the cache
    # is keyed by id, so each answer proves it ran its own statement, not a cached one.
    with store.read() as conn:
        for i in range(200):
            statement = select(literal(i).label("v"), literal(f"s{i}").label("s"))
            assert fastpath.fetch(conn, statement, {}) == [{"v": i, "s": f"s{i}"}]
            del statement
            gc.collect(0)


def test_parameters_bind_by_name_whatever_keys_a_call_gives(store: Store) -> None:
    # One statement called with different sets of keys: values the call leaves out come
    # from the statement's own literals, JSON parameters are encoded, IN lists expanded.
    ids = bindparam("ids", expanding=True)
    with store.write() as conn:
        fastpath.executemany(conn, _INSERT, [_tenant("a"), _tenant("b"), _tenant("c")])
        rename = update(tenants).where(tenants.c.id == bindparam("tid")).values(name="renamed")
        fastpath.fetch(conn, rename, {"tid": "t_a"})
        fastpath.fetch(conn, rename, {"tid": "t_b", "name": "given"})
        names = select(tenants.c.id, tenants.c.name).where(tenants.c.id.in_(ids))
        rows = fastpath.fetch(conn, names.order_by(tenants.c.id), {"ids": ["t_a", "t_b", "t_c"]})
        assert [r["name"] for r in rows] == ["renamed", "given", "c"]
        echo = select(bindparam("doc", type_=JSON).label("doc"))
        assert fastpath.fetch(conn, echo, {"doc": {"k": [1, "é"]}}) == [{"doc": {"k": [1, "é"]}}]
        with pytest.raises(SQLAlchemyError, match="tid"):
            fastpath.fetch(conn, rename, {"name": "no id"})


@pytest.fixture
def sqlite_store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings)  # SQLite: one write lock for the whole database
    yield store
    store.close()


def test_a_connection_that_must_not_wait_fails_at_once_when_another_writer_holds_the_lock(
    sqlite_store: Store,
) -> None:
    """``connect_no_wait`` (the worker's event loop uses it on SQLite): its write transaction
    fails at once with "database is locked", having written nothing, and works once the lock
    is free. The pool's connections still wait for the lock."""
    store = sqlite_store
    own = connect_no_wait(store)
    with store.write() as holder:  # BEGIN IMMEDIATE: the write lock, until the block ends
        holder.execute(_INSERT, _tenant("held"))
        started = time.monotonic()
        with pytest.raises(DBAPIError) as caught, own.begin():
            own.execute(_INSERT, _tenant("refused"))
        assert is_busy(caught.value)
        assert time.monotonic() - started < 1.0, "it waited for the lock"
    with own.begin():
        own.execute(_INSERT, _tenant("later"))
    own.close()  # out of the pool: its busy timeout of 0 must not reach another user
    for _ in range(3):  # every connection the pool holds
        with store.write() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
    with store.read() as conn:
        names = conn.execute(select(tenants.c.name).order_by(tenants.c.name)).scalars().all()
    assert [n for n in names if n in ("held", "refused", "later")] == ["held", "later"]
