"""Opening the database: every dialect specific of fabflow lives in this module.

SQLite (the embedded store) is tuned to behave under concurrency; each PRAGMA says why.
PostgreSQL needs nothing special to open; its claim query and wake-ups are chosen here too.
"""

from __future__ import annotations

import fcntl
import logging
import operator
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from fabflow.errors import StoreError
from fabflow.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30000  # how long an SQLite writer waits for another to finish
CHANNEL = "fabflow_attempts"  # PostgreSQL NOTIFY channel: an attempt became runnable


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# Every transition writes and every claim reads JSON columns: orjson does it several times
# faster than the standard library.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def open_engine(settings: Settings, pre_ping: bool = True) -> Engine:
    """An Engine for the configured store, migrated to the latest schema.

    ``pre_ping`` checks a pooled connection before each use, so that the first request after
    a database restart does not fail. Workers turn it off: it costs a round trip on every
    transaction, and they retry a lost connection themselves.
    """
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = _sqlite_engine(url, settings.sqlite_synchronous)
    else:
        engine = create_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=pre_ping, **_JSON_CODEC
        )
    migrate(engine)
    return engine


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    # NullPool would reopen the file per checkout; the default QueuePool keeps connections warm.
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **_JSON_CODEC
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is wrong).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer and the writer never blocks readers.
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a process crash; FULL also survives power loss (slower).
        cur.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        # Wait for a competing writer instead of failing at once with "database is locked".
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that upgrades from read
        # to write can fail with SQLITE_BUSY regardless of busy_timeout.
        sql = f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'IMMEDIATE')}"
        # Straight to the driver: SQLAlchemy's execution path costs more than the BEGIN.
        with _wrapped_errors(conn, sql, ()):
            _driver_cursor(conn).execute(sql)

    return engine


def reader(conn: Connection) -> Connection:
    """A connection for read-only transactions that see one consistent snapshot.

    SQLite: a deferred transaction (a snapshot, without the write lock). PostgreSQL: REPEATABLE
    READ; under its default READ COMMITTED each statement sees the latest commits, so an order
    read in several queries could show a finished execution without the files its last step
    stored in the same commit.
    """
    if is_sqlite(conn):
        return conn.execution_options(sqlite_begin="DEFERRED")
    return conn.execution_options(isolation_level="REPEATABLE READ")


def connect_no_wait(engine: Engine) -> Connection:
    """A SQLite connection of the caller's own (out of the pool, closed with it) whose write
    transactions fail at once (``is_busy``) when another writer holds the lock, instead of
    waiting for it: for a caller that must not block, such as a worker's event loop, and has
    somewhere else to wait."""
    conn = engine.connect()
    conn.detach()  # its busy timeout must not reach the pool's next user
    _driver_cursor(conn).execute("PRAGMA busy_timeout=0")
    return conn


def is_busy(exc: DBAPIError) -> bool:
    """SQLite's "database is locked": another writer held the lock (see ``connect_no_wait``)."""
    return getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def claims_only(conn: Connection) -> None:
    """This transaction only claims: it need not wait for its commit to reach the disk.

    Losing a claim in a crash loses nothing (the attempt stays queued and is claimed again),
    so PostgreSQL may acknowledge the commit before flushing it: wake-ups get faster. SQLite in
    WAL mode with synchronous=NORMAL does not flush on commit anyway.
    """
    if not is_sqlite(conn):
        conn.execute(text("SET LOCAL synchronous_commit = off"))


def migrate(engine: Engine) -> None:
    """Apply the Alembic migrations up to head, once even when processes start together."""
    # Alembic logs a dozen lines per start (some at import): noise for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if is_sqlite(engine):
        db_path = engine.url.database or ""
        lock_path = Path(db_path + ".migrate.lock")
        with lock_path.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        return
    with engine.connect() as conn:
        # A session-level advisory lock serialises concurrent upgrades on PostgreSQL.
        conn.execute(text("SELECT pg_advisory_lock(7260231)"))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(7260231)"))
            conn.commit()


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise StoreError(f"cannot reach the database: {exc}") from exc


def notify(conn: Connection) -> None:
    """Wake workers of other processes: NOTIFY on PostgreSQL (delivered at commit); SQLite
    workers poll."""
    if not is_sqlite(conn):
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class Listener:
    """Wakes a worker when another process commits a runnable attempt (PostgreSQL LISTEN).

    It listens on a connection of its own, in a thread of its own: a connection waiting in
    psycopg's ``notifies()`` cannot run queries. A lost connection is reopened with backoff;
    meanwhile the worker's poll still finds the work.
    """

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fabflow-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    self.wake()  # anything committed while we were away
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.wake()
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)


# -- the hot path on SQLite -----------------------------------------------------------------
#
# A worker's database cycle runs the same few statements thousands of times a second. On
# SQLite, SQLAlchemy's per-execution work (cache key, parameter and result processing) costs
# more than SQLite itself; these helpers compile a statement once and go straight through the
# driver, inside the Connection's transaction. PostgreSQL takes SQLAlchemy's usual path.


@dataclass(frozen=True)
class _Raw:
    """A statement compiled once for SQLite, with what it takes to bind and decode."""

    statement: Any  # held, so that its id (the cache key) cannot be reused by another
    sql: str
    names: tuple[str, ...]  # parameter names in placeholder order
    constants: dict[str, Any]  # every parameter's default (the statement's own literals)
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # JSON and IN-list positions
    keys: tuple[str, ...]  # result column keys (empty: no result)
    json_keys: tuple[str, ...]  # result columns decoded from JSON
    bool_keys: tuple[str, ...]
    binders: dict[tuple[str, ...], Callable[[Mapping[str, Any]], Sequence[Any]]] = field(
        default_factory=dict
    )

    def binder(self, given: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
        """What turns parameters with the keys ``given`` into placeholder values: made once
        per set of keys (a statement is called with the same keys every time)."""
        bind = self.binders.get(given)
        if bind is None:
            bind = self.binders[given] = self._make_binder(frozenset(given))
        return bind

    def _make_binder(self, given: frozenset[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
        missing = [n for n in self.names if n not in given and n not in self.constants]
        if missing:  # as SQLAlchemy says it
            raise InvalidRequestError(f"A value is required for bind parameter {missing[0]!r}")
        slots = [i for i, n in enumerate(self.names) if n in given]
        template = [None if n in given else self.constants[n] for n in self.names]
        converters = self.converters

        def convert(values: list[Any]) -> list[Any]:  # JSON and IN-list parameters
            for i, to_sql in converters:
                if values[i] is not None:
                    values[i] = to_sql(values[i])
            return values

        if not slots:
            return lambda _params: convert(list(template))
        getter: Callable[[Mapping[str, Any]], Sequence[Any]]
        if len(slots) == 1:
            name = self.names[slots[0]]
            getter = lambda params: (params[name],)  # noqa: E731
        else:
            getter = operator.itemgetter(*(self.names[i] for i in slots))
        if len(slots) == len(self.names):  # every value from the parameters
            if not converters:
                return getter  # as they are: one C call
            return lambda params: convert(list(getter(params)))

        def bind(params: Mapping[str, Any]) -> Sequence[Any]:
            values = list(template)
            for i, value in zip(slots, getter(params), strict=True):
                values[i] = value
            return convert(values)

        return bind

    def rows(self, cursor: Any) -> list[dict[str, Any]]:
        keys = self.keys
        out = [dict(zip(keys, row)) for row in cursor.fetchall()]  # noqa: B905 - same length
        for key in self.json_keys:
            for row in out:
                if row[key] is not None:
                    row[key] = orjson.loads(row[key])
        for key in self.bool_keys:
            for row in out:
                if row[key] is not None:
                    row[key] = bool(row[key])
        return out


def _json_list(values: Any) -> str:
    return _dumps(list(values))


_RAW: dict[tuple[int, tuple[str, ...] | None], _Raw] = {}
_EXPANDING = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


def _raw(statement: Any, dialect: Any, keys: tuple[str, ...] | None = None) -> _Raw:
    """``statement`` compiled for SQLite (once per statement and, for inserts, row keys)."""
    cached = _RAW.get((id(statement), keys))
    if cached is not None:
        return cached
    compiled = statement.compile(
        dialect=dialect, column_keys=list(keys) if keys is not None else None
    )
    assert compiled.positiontup is not None  # pysqlite uses the qmark style
    binds = compiled.binds
    expanding = frozenset(n for n, b in binds.items() if b.expanding)
    # An IN list becomes one parameter: its values as a JSON array, read back by json_each.
    sql = _EXPANDING.sub(r"SELECT value FROM json_each(?)", str(compiled))
    columns = list(getattr(statement, "exported_columns", ()))
    names = tuple(compiled.positiontup)
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(names):
        if name in expanding:
            converters.append((i, _json_list))
        elif isinstance(binds[name].type, JSON):
            converters.append((i, _dumps))
    raw = _Raw(
        statement=statement,
        sql=sql,
        names=names,
        # The statement's own values; a parameter made without one must be given.
        constants={n: v for n, v in compiled.params.items() if not binds[n].required},
        converters=tuple(converters),
        keys=tuple(c.key for c in columns),
        json_keys=tuple(c.key for c in columns if isinstance(c.type, JSON)),
        bool_keys=tuple(c.key for c in columns if isinstance(c.type, Boolean)),
    )
    _RAW[(id(statement), keys)] = raw
    return raw


def _driver_cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


@contextmanager
def _wrapped_errors(conn: Connection, sql: str, params: Any) -> Iterator[None]:
    """Driver errors as SQLAlchemy's (callers retry on ``DBAPIError``, as on the usual path)."""
    dbapi = conn.dialect.dbapi
    assert dbapi is not None
    try:
        yield
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, dbapi.Error) from exc


def fetch(conn: Connection, statement: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows ``statement`` returns, as dicts by column key (JSON decoded, booleans as bool).
    Also runs statements that return nothing (an empty list)."""
    if not is_sqlite(conn):
        result = conn.execute(statement, dict(params))
        return [dict(r) for r in result.mappings()] if result.returns_rows else []
    raw = _raw(statement, conn.dialect)
    values = raw.binder(tuple(params))(params)
    with _wrapped_errors(conn, raw.sql, values):
        cursor = _driver_cursor(conn)
        cursor.execute(raw.sql, values)
        return raw.rows(cursor) if raw.keys else []


def executemany(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> int:
    """Run ``statement`` once per row (rows hold plain values and all have the same keys);
    return the rows it changed in all (-1 where the driver does not tell)."""
    if not rows:
        return 0
    if not is_sqlite(conn):
        return int(conn.execute(statement, rows).rowcount)
    keys = tuple(rows[0])
    raw = _raw(statement, conn.dialect, keys)
    values = list(map(raw.binder(keys), rows))
    with _wrapped_errors(conn, raw.sql, values[:1]):
        cursor = _driver_cursor(conn)
        cursor.executemany(raw.sql, values)
        return int(cursor.rowcount)
