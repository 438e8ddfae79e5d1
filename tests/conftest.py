"""Fixtures shared by every test: a clean environment, settings, and a store on each database.

``store`` runs each test on SQLite and on PostgreSQL. PostgreSQL tests get a fresh database
copied from a migrated template (fast). Where no PostgreSQL runs they skip with the reason,
unless FABFLOW_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabflow.settings import Settings
from fabflow.store.repository import Store

PG_ADMIN_URL = os.environ.get(
    "FABFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("FABFLOW_REQUIRE_POSTGRES") == "1"
# Read before the autouse fixture clears FABFLOW_* for the tests themselves.
_TEMPLATE = f"fabflow_tpl_{os.getpid()}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's FABFLOW_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("FABFLOW_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", poll_seconds=0.05, lease_seconds=5.0)


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


def _url_for(db: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test session."""
    try:
        admin = _pg_admin()
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(
                f"PostgreSQL is required (FABFLOW_REQUIRE_POSTGRES=1) but unreachable: {exc}"
            )
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"')
        admin.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    store = Store.open(Settings(database_url=_url_for(_TEMPLATE)))
    store.close()
    yield _TEMPLATE
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, copied from the template, dropped after."""
    name = f"fabflow_t_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _url_for(name)
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings on SQLite, then on PostgreSQL."""
    if request.param == "postgres":
        return settings.with_(database_url=request.getfixturevalue("pg_url"))
    return settings


@pytest.fixture
def store(db_settings: Settings) -> Iterator[Store]:
    s = Store.open(db_settings)
    yield s
    s.close()
