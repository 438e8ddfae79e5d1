"""Opening the database: the engine, its settings per dialect, and migrations.

SQLite (the embedded store) is tuned to behave under concurrency; each PRAGMA says why.
PostgreSQL needs nothing special to open. The worker's queue (``fabflow.store.queue``) holds
the dialect tricks of the hot path.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection

from fabflow.errors import StoreError
from fabflow.settings import Settings
from fabflow.store.fastpath import driver_cursor, dumps, is_sqlite, wrapped_errors

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30000  # how long an SQLite writer waits for another to finish
CHANNEL = "fabflow_attempts"  # PostgreSQL NOTIFY channel: an attempt became runnable


# Every transition writes and every claim reads JSON columns: orjson is the faster codec.
_JSON_CODEC: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": orjson.loads}


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
        with wrapped_errors(conn, sql, ()):
            driver_cursor(conn).execute(sql)

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


HEALTH_PROBE = text(
    "INSERT INTO health_probes (node, checked_at) VALUES (:node, :at) "
    "ON CONFLICT (node) DO UPDATE SET checked_at = excluded.checked_at"
)


def write_probe(conn: Connection, node: str) -> None:
    """Write this node's health probe row (a real write: a read-only database, a full disk
    or a server in recovery refuses it)."""
    conn.execute(HEALTH_PROBE, {"node": node[:200], "at": time.time()})


def notify(conn: Connection) -> None:
    """Wake workers of other processes: NOTIFY on PostgreSQL (delivered at commit); SQLite
    workers poll."""
    if not is_sqlite(conn):
        conn.execute(text(f"NOTIFY {CHANNEL}"))
