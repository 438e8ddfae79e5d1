"""The statement path of the worker's hot loop on SQLite: compiled once, run on the driver.

A worker's database cycle runs the same few statements thousands of times a second. On SQLite,
SQLAlchemy's per-execution work (cache key, parameter and result processing) costs more than
SQLite itself; ``fetch`` and ``executemany`` compile a Core statement once and go straight
through the driver, inside the Connection's transaction. PostgreSQL takes SQLAlchemy's usual
path through the same two functions.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidRequestError


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


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
    return dumps(list(values))


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
            converters.append((i, dumps))
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


def driver_cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


@contextmanager
def wrapped_errors(conn: Connection, sql: str, params: Any) -> Iterator[None]:
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
    with wrapped_errors(conn, raw.sql, values):
        cursor = driver_cursor(conn)
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
    with wrapped_errors(conn, raw.sql, values[:1]):
        cursor = driver_cursor(conn)
        cursor.executemany(raw.sql, values)
        return int(cursor.rowcount)
