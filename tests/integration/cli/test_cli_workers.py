"""``fabflow workers`` tells a worker that went silent (killed, cut off) from one that runs."""

from __future__ import annotations

import json
import time

import pytest

from fabflow.store.repository import Store
from tests.integration.cli.conftest import fabflow


@pytest.mark.usefixtures("env")
def test_a_worker_silent_past_its_lease_is_lost(store: Store) -> None:
    store.register_worker("wrk-alive", "host-a", 101, 4)
    store.register_worker("wrk-killed", "host-b", 102, 4)
    with store.write() as conn:
        store.worker_heartbeat(conn, "wrk-killed", "running", time.time() - 600)
    listed = fabflow("workers", "--json")
    assert listed.exit_code == 0, listed.output
    states = {w["id"]: (w["state"], w["lastSeenSecondsAgo"]) for w in json.loads(listed.stdout)}
    assert states["wrk-alive"][0] == "running" and states["wrk-alive"][1] < 60
    assert states["wrk-killed"][0] == "lost" and states["wrk-killed"][1] >= 599
    text = fabflow("workers").stdout
    assert "wrk-killed  lost" in text and "last seen" in text
