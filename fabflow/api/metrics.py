"""Prometheus metrics, computed from the database at scrape time.

Nothing is counted in memory: every process (and every machine) sharing the database reports
the same numbers, and a restart loses nothing. Each scrape is four GROUP BY queries and a count
of the unhealthy orders over the tenant of the key that scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import Connection, case, func, select

from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.store import queue
from fabflow.store.orders.health import unhealthy_count
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, executions

# Seconds; steps range from a millisecond (a local REST call) to minutes (big meshes).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_ENDED = [s.value for s in AttemptState if s.ended]  # not queued, running or waiting


def executions_by_state(conn: Connection, tenant_id: str) -> dict[str, int]:
    query = (
        select(executions.c.state, func.count())
        .where(executions.c.tenant_id == tenant_id)
        .group_by(executions.c.state)
    )
    counts = {s.value: 0 for s in ExecutionState}
    counts.update({str(state): int(n) for state, n in conn.execute(query)})
    return counts


def attempts_by_outcome(conn: Connection, tenant_id: str) -> list[tuple[str, str, int]]:
    """``(outcome, step type, count)`` of ended attempts."""
    query = (
        select(attempts.c.state, attempts.c.step_type, func.count())
        .where(attempts.c.tenant_id == tenant_id, attempts.c.state.in_(_ENDED))
        .group_by(attempts.c.state, attempts.c.step_type)
    )
    return [(str(s), str(t), int(n)) for s, t, n in conn.execute(query)]


def duration_buckets(conn: Connection, tenant_id: str) -> dict[str, tuple[list[int], int, float]]:
    """Per step type: cumulative counts per bucket, total count and sum of seconds."""
    ms = attempts.c.duration_ms
    columns: list[Any] = [func.sum(case((ms <= b * 1000, 1), else_=0)) for b in BUCKETS]
    query = (
        select(attempts.c.step_type, func.count(ms), func.sum(ms), *columns)
        .where(attempts.c.tenant_id == tenant_id, ms.is_not(None))
        .group_by(attempts.c.step_type)
    )
    out = {}
    for row in conn.execute(query):
        step_type, count, total_ms, *cumulative = row
        seconds = (total_ms or 0) / 1000
        out[str(step_type)] = ([int(c or 0) for c in cumulative], int(count), seconds)
    return out


class _Snapshot:
    """A collector over numbers read once, in one read transaction."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        with store.read() as conn:
            self.states = executions_by_state(conn, tenant_id)
            self.outcomes = attempts_by_outcome(conn, tenant_id)
            self.durations = duration_buckets(conn, tenant_id)
            self.queue = queue.depth(conn, tenant_id)
            self.unhealthy = unhealthy_count(conn, tenant_id, time.time())

    def collect(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily("fabflow_orders", "Orders by execution state", labels=["state"])
        for state, n in self.states.items():
            orders.add_metric([state], n)
        yield orders
        yield GaugeMetricFamily(
            "fabflow_orders_unhealthy",
            "Orders retrying a failing step, waiting past a deadline or past their flow's deadline",
            value=self.unhealthy,
        )
        outcomes = CounterMetricFamily(
            "fabflow_attempts", "Ended step attempts", labels=["outcome", "step_type"]
        )
        for outcome, step_type, n in self.outcomes:
            outcomes.add_metric([outcome, step_type], n)
        yield outcomes
        yield self._histogram()
        depth = GaugeMetricFamily(
            "fabflow_queue_depth", "Attempts waiting (queued) or running", labels=["state"]
        )
        for state, n in self.queue.items():
            depth.add_metric([state], n)
        yield depth

    def _histogram(self) -> Metric:
        histogram = HistogramMetricFamily(
            "fabflow_step_duration_seconds", "Duration of step attempts", labels=["step_type"]
        )
        for step_type, (cumulative, count, total) in self.durations.items():
            buckets = [(str(b), float(c)) for b, c in zip(BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", float(count)))
            histogram.add_metric([step_type], buckets, total)
        return histogram


def render(store: Store, tenant_id: str) -> bytes:
    """The Prometheus text exposition of the tenant's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(store, tenant_id))
    data: bytes = generate_latest(registry)
    return data
