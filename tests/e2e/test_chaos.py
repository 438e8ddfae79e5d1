"""Chaos on PostgreSQL (issue 7): 300 orders through a 3-step flow (REST, email, REST) run by
three ``fabflow worker`` processes while one of them is SIGKILLed about every second and
replaced, and PostgreSQL itself goes down once mid-run for longer than a lease.

At the end every execution succeeded with exactly one recorded transition per step, every
side effect arrived at least once, every repeat carries a key the receiver already saw, and
the repeats are no more than the kills can explain.

Why repeats are bounded by what the kills interrupted: a side effect is repeated only when the
attempt that caused it was not recorded, i.e. its worker died (or lost the database) between
the side effect and the commit of its transition. A worker claims a round of attempts ahead,
but a slot starts its next attempt only once the last one is recorded, so a SIGKILLed worker
leaves at most one unrecorded side effect per slot: at most the attempts it held at that
moment (counted in the database right after each kill) and at most its concurrency (one with
``--concurrency 1``). The PostgreSQL outage cuts every live worker off at once: an attempt
whose lease expires meanwhile may be taken over by another worker when the server is back, and
a worker whose commit is cut redoes nothing (the commit either happened, and the guarded retry
records nothing twice, or it did not, and the attempt is still held). A slot starts nothing
while its commit waits, and an attempt claimed ahead is not started once its lease is in doubt,
so the outage allows at most one repeat per slot: workers x concurrency.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fabflow.settings import Settings
from fabflow.steps.email import message_id
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.e2e.support.orders import Placed, place_orders
from tests.e2e.support.pg import PgCluster
from tests.e2e.support.servers import RecordingHttp, RecordingSmtp
from tests.e2e.support.workers import WorkerProcess, tail, worker_env

ORDERS = 300
WORKERS = 3
LEASE_SECONDS = 3  # heartbeats every second: margin for a busy 2-core machine
KILL_EVERY = 1.0
PG_DOWN_SECONDS = LEASE_SECONDS + 1.0  # long enough for every lease held to expire
MAIL_FROM = "fabflow@localhost"
STATUSES = ["Shop notified", "Customer emailed", "Done"]

# The timeout stands above run_chaos's liveness bound, so that the bound is what fails.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(480)]


def chaos_flow(http: str) -> list[dict[str, Any]]:
    return [
        {
            "stepDefinitionId": "notify-shop",
            "type": "consume-rest-api",
            "successStatus": STATUSES[0],
            "options": {"uri": f"{http}/orders"},
            "onSuccess": "email-customer",
        },
        {
            "stepDefinitionId": "email-customer",
            "type": "send-email",
            "successStatus": STATUSES[1],
            "options": {
                "recipients": ["customer@example.com"],
                "subject": "Order {{ order.id }} is in production",
                "message": "Hello {{ order.customer.name }}, your order is {{ order.status }}.",
            },
            "onSuccess": "close",
        },
        {
            "stepDefinitionId": "close",
            "type": "consume-rest-api",
            "successStatus": STATUSES[2],
            "options": {"uri": f"{http}/done"},
        },
    ]


# -- watching the database from outside ---------------------------------------------------


def query(url: str, sql: str, *params: Any) -> Any:
    """One value, retried while the server is restarting."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute(sql, params).fetchone()
                return None if row is None else row[0]
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def steps_done(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM attempts WHERE state = 'success'"))


def ended(url: str) -> int:
    return int(
        query(
            url, "SELECT count(*) FROM executions WHERE state <> 'pending' AND state <> 'running'"
        )
    )


def held_by(url: str, worker_prefix: str | None = None) -> int:
    """Attempts in the running state: held by a worker (the given one) and not recorded."""
    if worker_prefix is None:
        return int(query(url, "SELECT count(*) FROM attempts WHERE state = 'running'"))
    sql = "SELECT count(*) FROM attempts WHERE state = 'running' AND worker_id LIKE %s"
    return int(query(url, sql, worker_prefix + "%"))


def describe_held(url: str, worker_prefix: str) -> str:
    sql = (
        "SELECT string_agg(format('%%s %%s lease %%s s claims %%s', id, step_id,"
        " round((lease_until - extract(epoch from now()))::numeric, 1), claims), '; ')"
        " FROM attempts WHERE state = 'running' AND worker_id LIKE %s"
    )
    return str(query(url, sql, worker_prefix + "%"))


def queue_summary(url: str) -> str:
    """Attempts by state and step, with how soon they run or their leases end."""
    sql = (
        "SELECT string_agg(line, E'\\n') FROM (SELECT format('%%s %%s: %%s, run_after in %%s s,"
        " lease ends in %%s s', state, step_id, count(*),"
        " round(min(run_after - extract(epoch from now()))::numeric, 1),"
        " round(min(lease_until - extract(epoch from now()))::numeric, 1)) AS line"
        " FROM attempts GROUP BY state, step_id) lines"
    )
    return str(query(url, sql))


def heartbeat_since(url: str, worker_prefix: str, since: float) -> bool:
    sql = "SELECT count(*) FROM workers WHERE id LIKE %s AND heartbeat_at > %s"
    return bool(query(url, sql, worker_prefix + "%", since))


# -- the fleet ------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Worker slots that the chaos kills and refills."""

    env: dict[str, str]
    logs: Path
    concurrency: int
    slots: list[WorkerProcess] = field(default_factory=list)
    retired: list[WorkerProcess] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)  # attempts each kill interrupted
    crashed: list[WorkerProcess] = field(default_factory=list)  # died on their own
    failed_starts: int = 0
    orphans: int = 0  # processes a killed worker left running (its production pool)

    def spawn(self) -> WorkerProcess:
        n = len(self.slots) + len(self.retired)
        return WorkerProcess.spawn(
            self.env, self.logs / f"worker-{n:03d}.log", "--concurrency", str(self.concurrency)
        )

    def start(self, count: int) -> None:
        self.slots = [self.spawn() for _ in range(count)]

    def kill_one(self, rng: random.Random, db_url: str) -> None:
        """SIGKILL a worker that is past its start-up if there is one (killing one that is
        still importing tests little), then start its replacement."""
        running = [i for i, w in enumerate(self.slots) if w.running()]
        i = rng.choice(running) if running else rng.randrange(len(self.slots))
        victim = self.slots[i]
        self.orphans += victim.kill()
        self.kills.append(held_by(db_url, victim.id_prefix))
        self.retired.append(victim)
        self.slots[i] = self.spawn()

    def refill(self) -> None:
        """Replace workers that exited by themselves; a worker that was running and exited is
        a crash (it should have ridden out the outage), one that never started is not."""
        for i, w in enumerate(self.slots):
            if w.proc.poll() is None:
                continue
            w.kill()  # sweep what it left behind
            if " running (concurrency" in w.log():
                self.crashed.append(w)
            else:
                self.failed_starts += 1
            self.retired.append(w)
            self.slots[i] = self.spawn()

    def everyone(self) -> list[WorkerProcess]:
        return self.retired + self.slots


@dataclass
class Outage:
    at_step: int = 0  # steps recorded when it began
    held: int = 0
    down_s: float = 0.0
    resumed_s: float = 0.0


@pytest.fixture(params=[1, 4], ids=lambda c: f"concurrency-{c}")
def concurrency(request: pytest.FixtureRequest) -> int:
    """Attempts each worker runs at once: 1 gives the issue's bound (a kill repeats at most
    one side effect); 4 puts batches of transitions in the way of the kills."""
    return int(request.param)


@pytest.fixture
def receivers(concurrency: int) -> Iterator[tuple[RecordingHttp, RecordingSmtp]]:
    # Slower receivers for busier workers: the run lasts about as long whatever the
    # concurrency, so that the kills and the outage land in the middle of it.
    http = RecordingHttp(delay=lambda _hit: 0.02 * concurrency).start()
    smtp = RecordingSmtp.start(data_delay=0.01 * concurrency)
    try:
        yield http, smtp
    finally:
        http.stop()
        smtp.stop()


def test_chaos_kills_and_a_postgres_restart_lose_nothing(
    tmp_path: Path,
    pg_cluster: PgCluster,
    receivers: tuple[RecordingHttp, RecordingSmtp],
    concurrency: int,
) -> None:
    http, smtp = receivers
    db_url = pg_cluster.create_database("fabflow")
    store = Store.open(Settings(database_url=db_url))
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "chaos", chaos_flow(http.url), "Chaos")
    placed = place_orders(store, tenant, "chaos", ORDERS, prefix="CHAOS")
    env = worker_env(
        database_url=db_url,
        lease_seconds=str(LEASE_SECONDS),
        smtp_url=smtp.url,
        outbound_allow="127.0.0.1",
        mail_from=MAIL_FROM,
        shutdown_grace_seconds="5",
    )
    fleet = Fleet(env, tmp_path / "logs", concurrency)
    rng = random.Random(7)
    started = time.monotonic()
    fleet.start(WORKERS)
    try:
        outage = run_chaos(fleet, pg_cluster, db_url, rng)
        wall = time.monotonic() - started
        for w in fleet.slots:
            w.wait_running()  # SIGTERM before start-up ends is not a drain
        codes = [w.drain() for w in fleet.slots]
    finally:
        for w in fleet.slots:
            w.kill()
    everyone = fleet.everyone()
    assert not fleet.crashed, "workers died on their own:\n" + tail(fleet.crashed)
    assert codes == [0] * WORKERS, tail(fleet.slots)
    dead_threads = [w for w in everyone if "Exception in thread" in w.log()]
    assert not dead_threads, tail(dead_threads)

    repeats = side_effects(http, smtp, placed, everyone)
    bound = sum(min(held, concurrency) for held in fleet.kills) + WORKERS * concurrency
    print(
        f"\norders={ORDERS} workers={WORKERS} concurrency={concurrency} "
        f"wall_s={wall:.1f} kills={len(fleet.kills)} held_at_kills={sum(fleet.kills)} "
        f"pg_down_at_step={outage.at_step}/{3 * ORDERS} pg_down_s={outage.down_s:.1f} "
        f"held_at_pg_stop={outage.held} "
        f"resumed_after_pg_s={outage.resumed_s:.1f} failed_starts={fleet.failed_starts} "
        f"orphan_processes_after_kills={fleet.orphans} "
        f"duplicates={sum(repeats.values())} ({dict(repeats)}) bound={bound}"
    )
    assert len(fleet.kills) >= 10, "the run was too short to mean much"
    # A lease lost by a live worker (starved for longer than a lease) would be a repeat that
    # no kill explains: name those in the failure.
    lost = [line for w in everyone for line in w.log().splitlines() if "lease lost" in line]
    assert sum(repeats.values()) <= bound, "leases lost by live workers:\n" + "\n".join(lost)
    if concurrency == 1:
        # The issue's own bound: each kill (the outage counts as one per worker) repeats at
        # most one side effect.
        assert sum(repeats.values()) <= len(fleet.kills) + WORKERS
    check_orders(store, tenant, placed)
    store.close()


def run_chaos(fleet: Fleet, pg: PgCluster, db_url: str, rng: random.Random) -> Outage:
    """Kill a worker about every second until every execution ended; a third of the way
    through (in steps: executions end in a burst near the end), take PostgreSQL down for
    longer than a lease."""
    outage: Outage | None = None
    # A liveness bound, not a speed goal: the run takes 60 to 140 s here, and a CI run on a
    # host in a slow spell (the whole suite 60 % slower) took longer than 180 s.
    deadline = time.monotonic() + 360
    while (done := ended(db_url)) < ORDERS:
        assert time.monotonic() < deadline, f"only {done}/{ORDERS} ended:\n" + tail(fleet.slots)
        time.sleep(KILL_EVERY * rng.uniform(0.5, 1.5))
        fleet.refill()
        if outage is None and steps_done(db_url) >= ORDERS:  # 3 steps an order: a third
            outage = restart_postgres(fleet, pg, db_url)
        else:
            fleet.kill_one(rng, db_url)
    assert outage is not None, "PostgreSQL was never restarted"
    assert outage.at_step < 3 * ORDERS, "the outage came after the work: it tested nothing"
    return outage


def restart_postgres(fleet: Fleet, pg: PgCluster, db_url: str) -> Outage:
    """Stop the server hard, keep it down past every lease, start it; then, without killing
    anyone, wait until each worker that lived through it is back: its heartbeat reached the
    database again (a worker hung on a dead connection would be hidden by the next kills)."""
    for w in fleet.slots:
        w.wait_running()
    survivors = list(fleet.slots)
    deadline = time.monotonic() + 10
    while held_by(db_url) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.02)  # cut them off with attempts in their hands
    outage = Outage(at_step=steps_done(db_url), held=held_by(db_url))
    stopped = time.monotonic()
    pg.stop("immediate")
    time.sleep(PG_DOWN_SECONDS)
    pg.start()
    back = time.time()
    outage.down_s = time.monotonic() - stopped
    deadline = time.monotonic() + 30
    for w in survivors:
        while not heartbeat_since(db_url, w.id_prefix, back):
            assert w.proc.poll() is None, "a worker died on the restart:\n" + tail([w])
            if time.monotonic() > deadline:
                holds = describe_held(db_url, w.id_prefix) + "\n" + queue_summary(db_url)
                w.dump_stacks()
                raise AssertionError(
                    f"did not resume after the restart, holds {holds}:\n" + tail([w], 80)
                )
            time.sleep(0.1)
    outage.resumed_s = time.time() - back
    return outage


def side_effects(
    http: RecordingHttp, smtp: RecordingSmtp, placed: list[Placed], workers: list[WorkerProcess]
) -> Counter[str]:
    """Check every side effect arrived, and only with known keys; count the repeats."""
    expected = {
        "/orders": {p.key(1) for p in placed},
        "email": {message_id(p.key(2), MAIL_FROM) for p in placed},
        "/done": {p.key(3) for p in placed},
    }
    seen = {
        "/orders": http.keys("/orders"),
        "email": smtp.message_ids(),
        "/done": http.keys("/done"),
    }
    repeats: Counter[str] = Counter()
    for effect, keys in expected.items():
        missing = keys - set(seen[effect])
        unknown = set(seen[effect]) - keys
        assert not missing, f"{effect}: {len(missing)} side effects never happened"
        assert not unknown, f"{effect}: unexpected keys {sorted(map(str, unknown))[:5]}"
        repeats[effect] = sum(seen[effect].values()) - len(keys)
    # A takeover comes a lease after the last heartbeat, long after the receiver answered the
    # dead worker: the same key twice at once would mean two live workers ran one attempt.
    overlapping = [h for h in http.snapshot() if h.in_flight_same_key > 1]
    if overlapping:  # say who held what: the workers' lines on leases and takeovers
        leases = [
            f"{w.id_prefix}: {line}"
            for w in workers
            for line in w.log().splitlines()
            if "lease" in line or "taking over" in line or "taken over" in line
        ]
        raise AssertionError(
            f"one attempt ran twice at the same time: {overlapping[:3]}\n" + "\n".join(leases)
        )
    by_key = {p.key(n): p.order_id for p in placed for n in (1, 3)}
    wrong = [h for h in http.snapshot() if by_key.get(h.key or "") != h.order_id]
    assert not wrong, f"a key arrived with another order's body: {wrong[:3]}"
    return repeats


def check_orders(store: Store, tenant: str, placed: list[Placed]) -> None:
    """Every execution succeeded with one recorded transition per step, none lost or doubled."""
    for p in placed:
        order = orders.get_order(store, tenant, p.order_id)
        execution = order["execution"]
        assert execution["state"] == "succeeded", execution
        assert order["status"] == "Done"
        assert [h["status"] for h in order["statusHistory"]] == STATUSES, order["statusHistory"]
        outcomes = [(a["stepDefinitionId"], a["outcome"]) for a in execution["attempts"]]
        assert outcomes == [
            ("notify-shop", "success"),
            ("email-customer", "success"),
            ("close", "success"),
        ], execution["attempts"]
