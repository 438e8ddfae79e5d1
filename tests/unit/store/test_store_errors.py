"""The queue port's table of database errors: what a worker waits out, and what it does not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from fabflow.errors import StoreError, StoreUnavailable
from fabflow.store.queue.port import _translate


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OperationalError("SELECT 1", {}, Exception("server closed the connection")),
            StoreUnavailable,
        ),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), StoreError),
        (
            DBAPIError("SELECT 1", {}, Exception("lost"), connection_invalidated=True),
            StoreUnavailable,
        ),
    ],
)
def test_database_errors_become_fabflow_errors(error: DBAPIError, expected: type) -> None:
    translated = _translate(error)
    assert type(translated) is expected
    assert translated.code == expected.code
    assert str(error.orig) in translated.message
