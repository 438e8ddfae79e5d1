"""Timestamps in resources: ISO 8601 UTC with milliseconds, as DESIGN section 5 shows them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fabflow.resources import iso


@pytest.mark.parametrize(
    "ts",
    [0.0, 1.5, 1700000000.123, 1700000000.9996, 1700000059.9999999, 1893456000.0, 4102444799.001],
)
def test_iso_agrees_with_datetime_to_the_millisecond(ts: float) -> None:
    whole_ms = int(ts * 1000)  # truncated, never rounded up into the next second
    expected = datetime.fromtimestamp(whole_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert iso(ts) == expected[:-3] + "Z"


def test_iso_of_nothing_is_none() -> None:
    assert iso(None) is None


def test_timestamps_of_many_seconds_stay_right_past_the_cache() -> None:
    start = 1700000000.25
    for i in range(10_000):  # more distinct seconds than the cache keeps
        assert iso(start + i) == datetime.fromtimestamp(start + i, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.250Z"
        )
