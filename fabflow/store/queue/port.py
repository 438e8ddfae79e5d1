"""``SqlQueue``: the queue port a worker runs on, over SQLite or PostgreSQL.

The worker calls its coroutines with typed records and gets typed records back; every
database detail stays here:

- On SQLite, calls on the hot path (claims, transitions, heartbeats) first run on the event
  loop itself, on a connection of the queue's own whose write transactions fail at once
  instead of waiting for another writer's lock; only then do they move to the queue's thread,
  which waits. A commit on the loop costs a few hundred microseconds, less than handing the
  interpreter lock to a thread and back. Nothing is lost by the first try: SQLite takes the
  lock at BEGIN, before anything is written.
- On PostgreSQL, calls run on the queue's thread, and a LISTEN connection wakes the worker
  when another process enqueues.
- A lost or refused connection raises ``StoreUnavailable``; the caller decides how long to
  wait before the next try (the worker backs off within its leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from fabflow.errors import ConfigError, ErrorTable, StoreError, StoreUnavailable, translate
from fabflow.flows.model import Flow
from fabflow.store.fastpath import driver_cursor, fetch
from fabflow.store.orders.read import EXECUTION_COLUMNS, load_resources
from fabflow.store.queue import claims as claiming
from fabflow.store.queue.reads import ALONE, Read, order_read, read_keyed
from fabflow.store.queue.records import Claim, Transition, Work
from fabflow.store.queue.transitions import apply
from fabflow.store.queue.wakeups import Listener
from fabflow.store.repository import Store
from fabflow.store.schema import executions
from fabflow.store.secrets import load_secrets, steps_reading_secrets

T = TypeVar("T")

_EXECUTIONS = select(*EXECUTION_COLUMNS).where(
    executions.c.id.in_(bindparam("ids", expanding=True))
)


class SqlQueue:
    """The attempts of one store, as one worker claims and finishes them."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabflow-db")
        self._loop_thread = 0
        self._loop_conn: Connection | None = None  # SQLite: never waits for a lock
        self._listener: Listener | None = None
        self._wake: Callable[[], None] | None = None
        # By flow version: the steps whose options mention ``secrets``.
        self._secret_readers: dict[tuple[int, int], frozenset[str]] = {}
        self._reads: dict[tuple[int, str], tuple[Flow, Read]] = {}  # see ``reads.order_read``

    # -- opening and closing -------------------------------------------------------------

    async def open(self, wake: Callable[[], None]) -> None:
        """Start calling ``wake`` (from any thread) when an attempt may have become runnable."""
        self._wake = wake
        self._loop_thread = threading.get_ident()
        self.store.on_enqueue.append(wake)
        if self.store.is_sqlite:
            self._loop_conn = connect_no_wait(self.store)
        else:
            self._listener = Listener(self.store.settings.effective_database_url, wake)
            self._listener.start()

    async def close(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        if self._listener is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._listener.stop)
            self._listener = None
        if self._wake is not None:
            with contextlib.suppress(ValueError):
                self.store.on_enqueue.remove(self._wake)
        self._thread.shutdown(wait=True)

    # -- the worker's calls --------------------------------------------------------------

    async def callback_secret(self) -> str:
        """The installation's key of callback tokens (every worker must make the same)."""
        return await self._call(self.store.install_secret, "callback")

    async def register(self, worker_id: str, hostname: str, pid: int, concurrency: int) -> None:
        await self._call(self.store.register_worker, worker_id, hostname, pid, concurrency)

    async def cycle(
        self,
        finished: list[Transition],
        limit: int,
        worker_id: str,
        now: float,
        take_over: bool,
        expire_waits: bool = True,
        quotas: Mapping[str, int] | None = None,
    ) -> tuple[list[bool], list[Claim]]:
        """Record ``finished`` and claim up to ``limit`` attempts (and with ``quotas``, up to
        that many of each tenant's first), in one transaction (group commit: one commit
        serves many transitions, each still all-or-nothing). Returns whether each transition
        won (held its lease), and the claims."""
        args = (finished, limit, worker_id, now, take_over, expire_waits, quotas)
        return await self._call(self._cycle, *args, inline=True)

    async def runnable(self, now: float) -> dict[str, int]:
        """How many attempts each tenant has runnable now. It reads every queued attempt, so
        it runs in a read transaction of its own, on the queue's thread (on SQLite the cycles
        go on meanwhile on the event loop; a query beside the cycles' own, on PostgreSQL,
        slowed their heartbeats on a busy host)."""
        return await self._call(self._runnable, now)

    async def load(self, claims: list[Claim], light_types: Collection[str]) -> list[Work]:
        """What the claimed attempts need to run, in claim order (an attempt whose order
        vanished is left out). Steps of ``light_types`` read nothing of the order but its id."""
        return await self._call(self._load, claims, light_types, inline=True)

    async def heartbeat(
        self, worker_id: str, held: list[Claim], give_back: list[Claim], state: str, now: float
    ) -> list[int]:
        """Renew the leases of ``held`` and give ``give_back`` back to the queue; returns the
        attempt ids whose lease was lost (taken over or cancelled)."""
        args = (worker_id, held, give_back, state, now)
        return await self._call(self._heartbeat, *args, inline=True)

    async def release(self, held: list[Claim], now: float) -> None:
        """Give attempts back to the queue for any worker to run (a draining worker)."""
        await self._call(self._release, held, now)

    async def mark(self, worker_id: str, state: str, now: float) -> None:
        """Record the worker's state (``stopped`` when it ends)."""
        await self._call(self._mark, worker_id, state, now)

    # -- in a transaction ----------------------------------------------------------------

    def _cycle(
        self,
        finished: list[Transition],
        limit: int,
        worker_id: str,
        now: float,
        take_over: bool,
        expire_waits: bool,
        quotas: Mapping[str, int] | None,
    ) -> tuple[list[bool], list[Claim]]:
        with self._write() as conn:
            if not finished:
                _claims_only(conn)
            won = apply(conn, finished, now)
            lease = self.lease_seconds
            claims = claiming.claim(
                conn, worker_id, limit, now, lease, take_over, expire_waits, quotas
            )
            if any(t.decision.next is not None for t in finished):
                self.store.notify_enqueued(conn)
        return won, claims

    def _runnable(self, now: float) -> dict[str, int]:
        with self.store.read() as conn:
            return claiming.runnable(conn, now)

    def _load(self, claims: list[Claim], light_types: Collection[str]) -> list[Work]:
        with self._read() as conn:
            ids = {"ids": [c.execution_id for c in claims]}
            rows = {r["id"]: r for r in fetch(conn, _EXECUTIONS, ids)}
            claims = [c for c in claims if c.execution_id in rows]  # else the order vanished
            flows = {c.attempt_id: self._flow(conn, rows[c.execution_id]) for c in claims}
            stored: dict[str, list[dict[str, Any]]] = {}
            resources = self._orders(conn, claims, flows, rows, light_types, stored)
            secrets = self._secrets(conn, claims, flows, rows)
        work = []
        for c in claims:
            row = rows[c.execution_id]
            order_id = row["order_id"]
            flow, meta = flows[c.attempt_id]
            order = resources.get(order_id) or {"id": order_id}
            order.pop("steps", None)  # steps read them as ``steps``; receivers do not get them
            files = tuple(stored.get(order_id, ()))
            item = Work(c, flow, meta, order, files, bool(row["had_error"]), row["visits"])
            item.outputs = row["outputs"] or {}
            if c.attempt_id in secrets:
                item.secrets, item.secrets_problem = secrets[c.attempt_id]
            work.append(item)
        return work

    def _orders(
        self,
        conn: Connection,
        claims: list[Claim],
        flows: dict[int, tuple[Flow, dict[str, Any]]],
        rows: dict[str, dict[str, Any]],
        light_types: Collection[str],
        stored: dict[str, list[dict[str, Any]]],
    ) -> dict[str, dict[str, Any]]:
        """The orders of ``claims``, each read as far as its attempt needs (``reads``), by
        order id; ``stored`` receives the file records of those read as resources."""
        needed, alone, keyed = [], [], {}
        for c in claims:
            read = order_read(flows[c.attempt_id][0], c, light_types, self._reads)
            order_id = rows[c.execution_id]["order_id"]
            if isinstance(read, frozenset):
                keyed[order_id] = read
            elif read is not None:
                needed.append(order_id)
                if read == ALONE:
                    alone.append(order_id)
        found = read_keyed(conn, keyed) if keyed else {}
        if needed:
            by_order = {r["order_id"]: r for r in rows.values()}
            resources = load_resources(
                self.store, conn, needed, stored_files=stored, executions=by_order, alone=alone
            )
            found.update((r["id"], r) for r in resources)
        return found

    def _secrets(
        self,
        conn: Connection,
        claims: list[Claim],
        flows: dict[int, tuple[Flow, dict[str, Any]]],
        rows: dict[str, dict[str, Any]],
    ) -> dict[int, tuple[dict[str, str], str | None]]:
        """The decrypted secrets of each claim whose step's options mention them, by attempt
        id (with the reason when they cannot be read); one read per tenant."""
        by_tenant: dict[str, tuple[dict[str, str], str | None]] = {}
        found = {}
        for c in claims:
            row = rows[c.execution_id]
            key = (row["flow_pk"], row["flow_version"])
            readers = self._secret_readers.get(key)
            if readers is None:
                readers = self._secret_readers[key] = steps_reading_secrets(flows[c.attempt_id][0])
            if c.step_id not in readers:
                continue
            if c.tenant_id not in by_tenant:
                try:
                    keys = self.store.settings.secret_key
                    by_tenant[c.tenant_id] = (load_secrets(conn, keys, c.tenant_id), None)
                except ConfigError as exc:
                    by_tenant[c.tenant_id] = ({}, exc.message)
            found[c.attempt_id] = by_tenant[c.tenant_id]
        return found

    def _flow(self, conn: Connection, row: dict[str, Any]) -> tuple[Flow, dict[str, Any]]:
        """The parsed flow version of an execution, with its ``{"id", "name", "version"}``."""
        key = (row["flow_pk"], row["flow_version"])
        meta, _ = self.store.flow_definition(conn, *key)
        return self.store.flow(conn, *key), meta

    def _heartbeat(
        self, worker_id: str, held: list[Claim], give_back: list[Claim], state: str, now: float
    ) -> list[int]:
        with self._write() as conn:
            lost = claiming.heartbeat(conn, held, now, self.lease_seconds)
            claiming.release(conn, give_back, now)  # a no-op for any taken over meanwhile
            self.store.worker_heartbeat(conn, worker_id, state, now)
        return lost

    def _release(self, held: list[Claim], now: float) -> None:
        with self.store.write(first=True) as conn:
            claiming.release(conn, held, now)

    def _mark(self, worker_id: str, state: str, now: float) -> None:
        with self.store.write(first=True) as conn:
            self.store.worker_heartbeat(conn, worker_id, state, now)

    # -- transactions and threads --------------------------------------------------------

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction: on the event loop's thread, one that never waits for a lock."""
        if self._on_loop():
            return self._loop_transaction("IMMEDIATE")
        return self.store.write(first=True)

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._loop_transaction("DEFERRED") if self._on_loop() else self.store.read()

    def _on_loop(self) -> bool:
        return self._loop_conn is not None and threading.get_ident() == self._loop_thread

    @contextlib.contextmanager
    def _loop_transaction(self, mode: str) -> Iterator[Connection]:
        """A transaction on the event loop's own connection (held for the queue's life: no
        pool checkout, and its pages stay cached between the loop's transactions)."""
        assert self._loop_conn is not None
        conn = self._loop_conn.execution_options(sqlite_begin=mode)
        lock = self.store.write_lock if mode == "IMMEDIATE" else None
        if lock is not None and not lock.try_acquire():
            raise _Busy  # another writer of this process: wait on the queue's thread
        try:
            with conn.begin():
                yield conn
        finally:
            if lock is not None:
                lock.release()

    async def _call(self, fn: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """``fn`` on the event loop first (``inline``, SQLite), else on the queue's thread;
        the database's errors translated at this edge."""
        if inline and self._loop_conn is not None:
            try:
                return fn(*args)
            except _Busy:
                pass
            except DBAPIError as exc:
                if not is_busy(exc):
                    raise _translate(exc) from exc
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn, *args)
        except DBAPIError as exc:
            raise _translate(exc) from exc


class _Busy(Exception):
    """The write lock is taken: the call moves to the queue's thread, which may wait."""


def _unreachable(exc: DBAPIError, _call: None) -> StoreError:
    return StoreUnavailable(f"the database is out of reach: {exc.orig}")


def _failed(exc: DBAPIError, _call: None) -> StoreError:
    if exc.connection_invalidated:  # the driver saw the connection drop mid-statement
        return _unreachable(exc, _call)
    return StoreError(f"the database failed: {exc.orig}")


# The database's errors as fabflow's: a lost or refused connection (the server restarting,
# the network gone) is worth waiting out; anything else is a failure of the store.
_DATABASE_ERRORS: ErrorTable[None, StoreError] = {
    OperationalError: _unreachable,
    DBAPIError: _failed,
}


def _translate(exc: DBAPIError) -> StoreError:
    return translate(exc, _DATABASE_ERRORS, None) or _failed(exc, None)


def is_busy(exc: DBAPIError) -> bool:
    """SQLite's "database is locked": another writer held the lock (see ``connect_no_wait``)."""
    return getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def connect_no_wait(store: Store) -> Connection:
    """A SQLite connection of the queue's own (out of the pool, closed with it) whose write
    transactions fail at once when another writer holds the lock, instead of waiting: the
    event loop must not block, and the queue's thread is somewhere else to wait."""
    conn = store.engine.connect()
    conn.detach()  # its busy timeout must not reach the pool's next user
    driver_cursor(conn).execute("PRAGMA busy_timeout=0")
    return conn


def _claims_only(conn: Connection) -> None:
    """This transaction only claims: it need not wait for its commit to reach the disk.

    Losing a claim in a crash loses nothing (the attempt stays queued and is claimed again),
    so PostgreSQL may acknowledge the commit before flushing it: wake-ups get faster. SQLite in
    WAL mode with synchronous=NORMAL does not flush on commit anyway.
    """
    if conn.dialect.name != "sqlite":
        conn.execute(text("SET LOCAL synchronous_commit = off"))
