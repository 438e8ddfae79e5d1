"""Fixtures of the end-to-end tests: a private PostgreSQL cluster for the chaos test.

Where PostgreSQL's server binaries are not installed the test skips with the reason, unless
FABFLOW_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.support.pg import PgCluster, pg_bin_dir

REQUIRE_PG = os.environ.get("FABFLOW_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server of this test's own, on a free port, removed afterwards."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if REQUIRE_PG:
            pytest.fail(f"{reason}, and FABFLOW_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    cluster = PgCluster.create(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
