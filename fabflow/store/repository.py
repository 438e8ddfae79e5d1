"""The repository: every read and write of fabflow's objects, on SQLite or PostgreSQL.

``Store`` opens connections (``write()`` takes SQLite's write lock up front, ``read()`` does not)
and holds the few methods the API, the CLI and the worker share. Order-specific queries live in
``fabflow.store.orders``; the worker's hot path in ``fabflow.store.queue``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from fabflow.errors import Conflict, InvalidFlow, NotFound
from fabflow.flows.model import Flow, RetryOptions
from fabflow.flows.validate import parse_flow
from fabflow.ids import new_id
from fabflow.lifecycle.retry import RetryPolicy, default_for
from fabflow.resources import iso
from fabflow.settings import Settings
from fabflow.store import audit, db, fastpath
from fabflow.store.schema import (
    api_keys,
    flow_versions,
    flows,
    install_secrets,
    tenants,
    workers,
)

KEY_PREFIX = "ffk_"


def hash_key(secret: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class FlowRules:
    """What an order's health needs of its flow version: the flow's deadline (ms from the
    order's creation) and the most attempts each step makes (its retry policy's)."""

    deadline_ms: float | None
    max_attempts: Mapping[str, int]


class WriteTurns:
    """The turns of one process's SQLite writers, the worker's queue first.

    Under a flood of callbacks the API's group commit would take the lock again as soon as it
    let it go, and the worker that runs the steps those callbacks released would fall ever
    further behind. A writer asking with ``first`` (the queue's transactions) is let in before
    every other writer waiting; the others wait while one is waiting. Reentrant: a thread
    that holds the lock takes it again at once.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state = threading.Condition()
        self._first_waiting = 0
        self._owner: int | None = None
        self._depth = 0

    def try_acquire(self) -> bool:
        """Take the lock if it is free and no writer waits to go first."""
        if self._first_waiting and self._owner != threading.get_ident():
            return False
        if not self._lock.acquire(blocking=False):
            return False
        self._held()
        return True

    def acquire(self, *, first: bool = False) -> None:
        me = threading.get_ident()
        if self._owner == me:
            self._lock.acquire()
            self._depth += 1
            return
        if first:
            with self._state:
                self._first_waiting += 1
            try:
                self._lock.acquire()
            finally:
                with self._state:
                    self._first_waiting -= 1
                    self._state.notify_all()
        else:
            while True:
                with self._state:
                    self._state.wait_for(lambda: not self._first_waiting)
                self._lock.acquire()
                if not self._first_waiting:
                    break
                self._lock.release()  # one asking first came in meanwhile: after it
        self._held()

    def _held(self) -> None:
        self._owner = threading.get_ident()
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = None
        self._lock.release()

    @contextmanager
    def turn(self, *, first: bool = False) -> Iterator[None]:
        self.acquire(first=first)
        try:
            yield
        finally:
            self.release()


class Store:
    """The store of one database. Thread-safe: connections come from the engine's pool."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._flow_cache: dict[tuple[int, int], tuple[dict[str, Any], list[Any]]] = {}
        self._deadlines: dict[tuple[int, int], float | None] = {}
        self._rules: dict[tuple[int, int], FlowRules] = {}
        self._parsed: dict[tuple[int, int], Flow] = {}
        self._install_secrets: dict[str, str] = {}  # never change once made
        # Called (from any thread) after a commit that made an attempt runnable.
        self.on_enqueue: list[Callable[[], None]] = []
        # SQLite has one writer at a time; its busy handler makes the others sleep and retry
        # (up to 100 ms a try, in no order), so a busy writer of this process (the API taking
        # callbacks) could starve another (the worker recording steps). Writers of this
        # process take turns on this lock first, the queue's before the others; other
        # processes still meet SQLite's.
        self.write_lock: WriteTurns | None = WriteTurns() if fastpath.is_sqlite(engine) else None

    @classmethod
    def open(cls, settings: Settings, pre_ping: bool = True) -> Store:
        """The store of ``settings``; see ``db.open_engine`` for ``pre_ping``."""
        return cls(db.open_engine(settings, pre_ping), settings)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        return fastpath.is_sqlite(self.engine)

    @contextmanager
    def write(self, *, first: bool = False) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, after this process's other writers),
        committed on success. ``first``: the worker's queue, which goes before the writers
        waiting that are not (see ``WriteTurns``)."""
        if self.write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self.write_lock.turn(first=first), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as raw:
            conn = db.reader(raw)
            with conn.begin():
                yield conn

    def notify_enqueued(self, conn: Connection | None = None) -> None:
        """Wake workers: in-process listeners now, other processes through the dialect."""
        if conn is not None:
            db.notify(conn)
        for callback in list(self.on_enqueue):
            callback()

    # -- tenants and API keys -------------------------------------------------------------

    def ensure_tenant(self, name: str) -> str:
        """The id of tenant ``name``, created if it does not exist."""
        with self.write() as conn:
            found = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar()
            if found is not None:
                return str(found)
            tenant_id = new_id("ten")
            conn.execute(insert(tenants).values(id=tenant_id, name=name, created_at=time.time()))
            return tenant_id

    def tenant_name(self, tenant_id: str) -> str:
        with self.read() as conn:
            name = conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id)).scalar()
        if name is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return str(name)

    def create_api_key(
        self, tenant_name: str, label: str = "", by: str | None = None
    ) -> tuple[str, str]:
        """A new key for the tenant (created if needed): ``(key id, secret)``. The secret is
        returned once and only its hash is kept; the audit trail records who made it."""
        tenant_id = self.ensure_tenant(tenant_name)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = new_id("key")
        with self.write() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    tenant_id=tenant_id,
                    label=label,
                    key_hash=hash_key(secret),
                    prefix=secret[:10],
                    created_at=time.time(),
                )
            )
            shown = {"keyId": key_id, "label": label, "prefix": secret[:10]}
            audit.record(conn, tenant_id, "key_created", f"key {key_id}", shown, by)
        return key_id, secret

    def authenticate(self, secret: str) -> str | None:
        """The tenant id of a valid, unrevoked key; None otherwise."""
        query = select(api_keys.c.tenant_id).where(
            api_keys.c.key_hash == hash_key(secret), api_keys.c.revoked_at.is_(None)
        )
        with self.read() as conn:
            tenant_id = conn.execute(query).scalar()
        return None if tenant_id is None else str(tenant_id)

    def list_api_keys(self) -> list[dict[str, Any]]:
        query = (
            select(api_keys, tenants.c.name.label("tenant"))
            .join(tenants, tenants.c.id == api_keys.c.tenant_id)
            .order_by(api_keys.c.created_at)
        )
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "id": r["id"],
                "tenant": r["tenant"],
                "label": r["label"],
                "prefix": r["prefix"],
                "createdAt": iso(r["created_at"]),
                "revokedAt": iso(r["revoked_at"]),
            }
            for r in rows
        ]

    def revoke_api_key(self, key_id: str, by: str | None = None) -> None:
        with self.write() as conn:
            key = (
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=time.time())
                    .returning(api_keys.c.tenant_id, api_keys.c.label, api_keys.c.prefix)
                )
                .mappings()
                .first()
            )
            if key is None:
                raise NotFound(f"no active API key {key_id!r}")
            shown = {"keyId": key_id, "label": key["label"], "prefix": key["prefix"]}
            audit.record(conn, key["tenant_id"], "key_revoked", f"key {key_id}", shown, by)

    def key_identity(self, secret: str) -> dict[str, str] | None:
        """``{"id", "label"}`` of an API key (revoked or not), to name who acted."""
        query = select(api_keys.c.id, api_keys.c.label).where(
            api_keys.c.key_hash == hash_key(secret)
        )
        with self.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else {"id": row.id, "label": row.label}

    # -- flows ----------------------------------------------------------------------------

    def save_flow(
        self,
        tenant_id: str,
        flow_id: str,
        definition: list[Any],
        name: str,
        description: str = "",
        deadline_ms: float | None = None,
        by: str | None = None,
    ) -> int:
        """Create the flow or add a new version of it; returns the version number. The same
        flow again (steps, name, description, deadline) adds no version: its current one is
        returned, and an archived flow is restored. The audit trail records who saved it."""
        now = time.time()
        with self.write() as conn:
            row = conn.execute(
                select(
                    flows.c.pk,
                    flows.c.current_version,
                    flows.c.name,
                    flows.c.description,
                    flow_versions.c.definition,
                    flow_versions.c.deadline_ms,
                )
                .join(
                    flow_versions,
                    (flow_versions.c.flow_pk == flows.c.pk)
                    & (flow_versions.c.version == flows.c.current_version),
                )
                .where(flows.c.tenant_id == tenant_id, flows.c.flow_id == flow_id)
            ).first()
            same = row is not None and (
                row.definition,
                row.deadline_ms,
                row.name,
                row.description,
            ) == (
                definition,
                deadline_ms,
                name,
                description,
            )
            if row is not None and same:
                restored = conn.execute(
                    update(flows)
                    .where(flows.c.pk == row.pk, flows.c.archived)
                    .values(archived=False, updated_at=now)
                )
                if restored.rowcount:
                    shown = {"flowId": flow_id, "version": row.current_version}
                    audit.record(conn, tenant_id, "flow_restored", f"flow {flow_id}", shown, by)
                return int(row.current_version)
            if row is None:
                inserted = conn.execute(
                    insert(flows).values(
                        tenant_id=tenant_id,
                        flow_id=flow_id,
                        name=name,
                        description=description,
                        current_version=1,
                        archived=False,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key
                assert inserted is not None
                pk, version = inserted[0], 1
            else:
                pk, version = row.pk, row.current_version + 1
                conn.execute(
                    update(flows)
                    .where(flows.c.pk == pk)
                    .values(
                        current_version=version,
                        name=name,
                        description=description,
                        archived=False,
                        updated_at=now,
                    )
                )
            conn.execute(
                insert(flow_versions).values(
                    flow_pk=pk,
                    version=version,
                    definition=definition,
                    created_at=now,
                    deadline_ms=deadline_ms,
                )
            )
            shown = {"flowId": flow_id, "version": version, "name": name}
            audit.record(conn, tenant_id, "flow_saved", f"flow {flow_id}", shown, by)
        return version

    def _flow_row(self, conn: Connection, tenant_id: str, flow_id: str) -> Any:
        row = (
            conn.execute(
                select(flows).where(flows.c.tenant_id == tenant_id, flows.c.flow_id == flow_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no flow {flow_id!r}")
        return row

    def get_flow(self, tenant_id: str, flow_id: str, version: int | None = None) -> dict[str, Any]:
        """The flow resource with the definition of ``version`` (default: the current one)."""
        with self.read() as conn:
            row = self._flow_row(conn, tenant_id, flow_id)
            wanted = version or row["current_version"]
            definition = conn.execute(
                select(
                    flow_versions.c.definition,
                    flow_versions.c.created_at,
                    flow_versions.c.deadline_ms,
                ).where(flow_versions.c.flow_pk == row["pk"], flow_versions.c.version == wanted)
            ).first()
        if definition is None:
            raise NotFound(f"flow {flow_id!r} has no version {wanted}")
        out = _flow_resource(row)
        out.update(
            version=wanted,
            steps=definition.definition,
            deadline=_ms(definition.deadline_ms),
            versionCreatedAt=iso(definition.created_at),
        )
        return out

    def list_flows(self, tenant_id: str, include_archived: bool = False) -> list[dict[str, Any]]:
        query = select(flows).where(flows.c.tenant_id == tenant_id).order_by(flows.c.flow_id)
        if not include_archived:
            query = query.where(flows.c.archived.is_(False))
        with self.read() as conn:
            return [_flow_resource(r) for r in conn.execute(query).mappings()]

    def flow_versions(self, tenant_id: str, flow_id: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            row = self._flow_row(conn, tenant_id, flow_id)
            rows = conn.execute(
                select(flow_versions.c.version, flow_versions.c.created_at)
                .where(flow_versions.c.flow_pk == row["pk"])
                .order_by(flow_versions.c.version)
            ).all()
        return [{"version": r.version, "createdAt": iso(r.created_at)} for r in rows]

    def archive_flow(self, tenant_id: str, flow_id: str, by: str | None = None) -> None:
        with self.write() as conn:
            row = self._flow_row(conn, tenant_id, flow_id)
            archived = conn.execute(
                update(flows)
                .where(flows.c.pk == row["pk"], ~flows.c.archived)
                .values(archived=True, updated_at=time.time())
            )
            if archived.rowcount:
                shown = {"flowId": flow_id, "version": row["current_version"]}
                audit.record(conn, tenant_id, "flow_archived", f"flow {flow_id}", shown, by)

    def current_flow(self, conn: Connection, tenant_id: str, flow_id: str) -> tuple[int, int]:
        """``(flow pk, current version)`` of an active flow; NotFound otherwise."""
        row = self._flow_row(conn, tenant_id, flow_id)
        if row["archived"]:
            raise Conflict(f"flow {flow_id!r} is archived")
        return int(row["pk"]), int(row["current_version"])

    def flow_definition(
        self, conn: Connection, flow_pk: int, version: int
    ) -> tuple[dict[str, Any], list[Any]]:
        """``({"id", "name", "version"}, definition)``; versions are immutable, so cached."""
        key = (flow_pk, version)
        cached = self._flow_cache.get(key)
        if cached is None:
            row = conn.execute(
                select(
                    flows.c.flow_id,
                    flows.c.name,
                    flow_versions.c.definition,
                    flow_versions.c.deadline_ms,
                )
                .join(flow_versions, flow_versions.c.flow_pk == flows.c.pk)
                .where(flows.c.pk == flow_pk, flow_versions.c.version == version)
            ).one()
            cached = ({"id": row.flow_id, "name": row.name, "version": version}, row.definition)
            self._deadlines[key] = row.deadline_ms
            self._flow_cache[key] = cached
        return cached

    def flow_rules(self, conn: Connection, flow_pk: int, version: int) -> FlowRules:
        """The deadline and retry limits of a flow version (immutable, so cached)."""
        key = (flow_pk, version)
        rules = self._rules.get(key)
        if rules is None:
            attempts = self._max_attempts(conn, flow_pk, version)
            rules = self._rules[key] = FlowRules(self._deadlines.get(key), attempts)
        return rules

    @property
    def default_retry_policy(self) -> RetryPolicy:
        """The retry policy of a step without a ``retry`` of its own (the settings')."""
        return RetryPolicy.from_settings(self.settings)

    def _max_attempts(self, conn: Connection, flow_pk: int, version: int) -> dict[str, int]:
        """The most attempts each step of a flow version makes, by step id."""
        default = self.default_retry_policy
        try:
            steps = self.flow(conn, flow_pk, version).steps
        except InvalidFlow:
            # A step type whose plugin this process lacks (the CLI loads none): its options
            # cannot be checked here, but its retry policy can.
            _, definition = self.flow_definition(conn, flow_pk, version)
            return {
                s["stepDefinitionId"]: (
                    default_for(str(s.get("type")), default)
                    if s.get("retry") is None
                    else RetryOptions.model_validate(s["retry"])
                ).max_attempts
                for s in definition
            }
        return {s.step_definition_id: s.retry_policy(default).max_attempts for s in steps}

    def flow(self, conn: Connection, flow_pk: int, version: int) -> Flow:
        """A flow version, parsed (versions are immutable, so cached). ``InvalidFlow`` when a
        step type's plugin is missing from this process."""
        key = (flow_pk, version)
        flow = self._parsed.get(key)
        if flow is None:
            meta, definition = self.flow_definition(conn, flow_pk, version)
            flow = self._parsed[key] = parse_flow(definition, name=meta["name"])
        return flow

    def install_secret(self, name: str) -> str:
        """The installation's secret called ``name``, made (256 random bits) on first use;
        every process on this database gets the same one."""
        known = self._install_secrets.get(name)
        if known is not None:
            return known
        self._install_secrets[name] = value = self._load_install_secret(name)
        return value

    def file_link_secret(self) -> str:
        """The key of signed file links: the callback tokens' (``FABFLOW_CALLBACK_SECRET`` or
        the installation's), under its own purpose label (``fabflow.tokens``)."""
        return self.settings.callback_secret or self.install_secret("callback")

    def _load_install_secret(self, name: str) -> str:
        query = select(install_secrets.c.value).where(install_secrets.c.name == name)
        with self.read() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return str(found)
        try:
            with self.write() as conn:
                row = {"name": name, "value": secrets.token_urlsafe(32)}
                conn.execute(insert(install_secrets).values(**row))
        except IntegrityError:  # another process made it first: theirs
            pass
        with self.read() as conn:
            return str(conn.execute(query).scalar_one())

    # -- workers --------------------------------------------------------------------------

    def register_worker(self, worker_id: str, hostname: str, pid: int, concurrency: int) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(
                insert(workers).values(
                    id=worker_id,
                    hostname=hostname,
                    pid=pid,
                    concurrency=concurrency,
                    state="running",
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def worker_heartbeat(self, conn: Connection, worker_id: str, state: str, now: float) -> None:
        conn.execute(
            update(workers).where(workers.c.id == worker_id).values(heartbeat_at=now, state=state)
        )


def _ms(value: float | None) -> float | int | None:
    """Milliseconds as the flow document wrote them (an integer stays one)."""
    return int(value) if value is not None and value.is_integer() else value


def _flow_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["flow_id"],
        "name": row["name"],
        "description": row["description"],
        "currentVersion": row["current_version"],
        "archived": bool(row["archived"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }
