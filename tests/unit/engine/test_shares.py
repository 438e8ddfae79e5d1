"""The shares of a worker's slots between tenants: caps, round-robin claims, which claimed
attempt starts next, and what a worker learns from its claims (``fabflow.engine.fairness``)."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.engine.fairness import ReadyQueue, Shares, allocate, borrowed, tenant_cap
from fabflow.engine.leases import Ready
from fabflow.store.queue.records import Claim, Work


@pytest.mark.parametrize(
    ("concurrency", "share", "cap"),
    [
        (16, 0.5, 8),
        (10, 0.7, 7),  # not 6: 10 x 0.7 is 6.999... in binary
        (100, 0.29, 29),
        (3, 0.5, 1),
        (1, 0.5, 1),  # one slot: a tenant always gets one
        (16, 1.0, 16),  # the share off: a tenant may hold every slot
    ],
)
def test_a_tenants_cap_is_its_share_rounded_down_and_at_least_one(
    concurrency: int, share: float, cap: int
) -> None:
    assert tenant_cap(concurrency, share) == cap


@pytest.mark.parametrize(
    ("held", "waiting", "room", "fair_room", "served", "given"),
    [
        # Alone: a tenant gets all the room, past its cap (nobody else waits).
        ({"a": 10}, {"a": 50}, 22, 30, {}, {"a": 22}),
        # A newcomer below its cap is served first, even with no room left (fair room).
        ({"a": 32}, {"a": 8, "b": 1}, 0, 8, {}, {"b": 1}),
        ({"a": 32}, {"a": 8, "b": 20}, 0, 8, {}, {"b": 8}),
        # Round-robin: the tenant holding the fewest first, until they hold as many.
        ({"a": 6, "b": 2}, {"a": 9, "b": 9}, 6, 6, {}, {"b": 5, "a": 1}),
        ({}, {"a": 9, "b": 9, "c": 1}, 7, 7, {}, {"a": 3, "b": 3, "c": 1}),
        # A tie goes to the tenant served least recently.
        ({}, {"a": 5, "b": 5}, 1, 1, {"a": 7, "b": 3}, {"b": 1}),
        # Past its cap a tenant gets only the ordinary room.
        ({"a": 8, "b": 9}, {"a": 5, "b": 5}, 3, 10, {}, {"a": 2, "b": 1}),
        ({"a": 8, "b": 9}, {"a": 5, "b": 5}, 0, 10, {}, {}),
        # Nobody waits: nothing to give.
        ({"a": 3}, {}, 10, 10, {}, {}),
    ],
)
def test_claims_go_round_robin_fewest_held_first(
    held: dict[str, int],
    waiting: dict[str, int],
    room: int,
    fair_room: int,
    served: dict[str, int],
    given: dict[str, int],
) -> None:
    got = allocate(held, waiting, 8, room, fair_room, served)
    assert got == given
    assert list(got) == list(given)  # the order served


def work(tenant: str, attempt_id: int) -> Work:
    claim = Claim(attempt_id, 1, 1, "e", tenant, "s", "t", 1, 1, "k", None, 0.0, 0.0)
    flow: Any = None
    return Work(claim, flow, {}, {"id": "o"}, (), False, 0)


def ready(*tenants: str) -> ReadyQueue:
    queue = ReadyQueue()
    queue.extend(Ready(work(t, i), 0.0) for i, t in enumerate(tenants))
    return queue


@pytest.mark.parametrize(
    ("claimed", "running", "busy", "starts"),
    [
        # A free slot takes the oldest claim...
        ("aab", {"a": 3}, 3, "a"),
        # ... unless it is of a tenant at its cap (4) while one below it waits.
        ("aab", {"a": 4}, 4, "b"),
        # Every slot (8) taken, a tenant past its cap: one below it starts on a spare slot.
        ("aab", {"a": 8}, 8, "b"),
        ("aab", {"a": 8, "b": 3}, 11, "b"),
        # ... one per slot borrowed: a holds 4 past its cap, and 12 slots are taken.
        ("aab", {"a": 8, "b": 3}, 12, None),
        # Alone and full, a tenant waits for a slot of its own.
        ("aa", {"a": 8}, 8, None),
        # Full and nobody past the cap: wait.
        ("b", {"a": 4, "c": 4}, 8, None),
        # Slots held by finished attempts whose ends are not recorded yet count as taken.
        ("a", {"a": 2}, 8, None),
        ("", {}, 0, None),
    ],
)
def test_the_next_attempt_to_start(
    claimed: str, running: dict[str, int], busy: int, starts: str | None
) -> None:
    queue = ready(*claimed)
    item = queue.next(running, busy, 8, 4)
    assert (item.work.claim.tenant_id if item else None) == starts
    if item is not None:
        queue.remove(item)
        assert len(queue) == len(claimed) - 1
        assert sum(queue.tenants.values()) == len(claimed) - 1


def test_the_ready_queue_counts_by_tenant_as_it_changes() -> None:
    queue = ready("a", "b", "a")
    assert queue.tenants == {"a": 2, "b": 1}
    queue.keep(lambda r: r.work.claim.attempt_id != 0)
    assert queue.tenants == {"b": 1, "a": 1}
    queue.remove(next(iter(queue)))
    assert queue.tenants == {"a": 1}
    assert [r.work.claim.attempt_id for r in queue] == [2]


def test_borrowed_slots_are_those_held_past_the_cap() -> None:
    assert borrowed({"a": 12, "b": 3, "c": 9}, 8) == 4 + 1


def claims(*tenants: str) -> list[Claim]:
    return [work(t, i).claim for i, t in enumerate(tenants)]


def test_a_lone_tenant_is_claimed_for_as_before() -> None:
    shares = Shares(16, 0.5)
    shares.surveyed({"a": 100}, 0.001, 0.0)
    assert shares.plan({"a": 16}, {"a": 16}, 0, 32) is None
    assert shares.plan({}, {}, 32, 32) is None


def test_a_plan_serves_the_newcomer_and_learns_from_what_was_claimed() -> None:
    shares = Shares(16, 0.5)
    shares.surveyed({"a": 8, "b": 2, "c": 1}, 0.001, 0.0)
    plan = shares.plan({"a": 16}, {"a": 16}, 0, 32)
    assert plan is not None
    assert plan.quotas == {"b": 2, "c": 1} and plan.rest == 0
    # b's second attempt went to another worker meanwhile: b waits no more.
    shares.claimed(claims("b", "c"), plan, plan.asked)
    assert shares.waiting == {"a": 8}
    assert shares.deep  # no claim of anyone's was short: more may wait unseen
    assert shares.plan({"a": 16}, {"a": 16}, 0, 32) is None


def test_a_short_claim_of_anyones_attempts_means_the_queue_is_empty() -> None:
    shares = Shares(16, 0.5)
    shares.surveyed({"a": 3, "b": 3}, 0.001, 0.0)
    shares.claimed(claims("a", "b"), None, 10)
    assert shares.waiting == {}
    assert not shares.deep
    assert not shares.survey_due(1.0)


@pytest.mark.parametrize(
    ("took_s", "next_due"),
    [
        (0.001, 0.25),  # a quick count: four times a second
        (0.1, 2.1),  # a slow one (a deep queue): at most 5 % of the time
    ],
)
def test_counts_are_due_while_the_queue_runs_deep(took_s: float, next_due: float) -> None:
    shares = Shares(16, 0.5)
    assert not shares.survey_due(0.0)  # nothing claimed yet: nothing unseen
    shares.claimed(claims(*"a" * 32), None, 32)  # a full claim: the queue may hold more
    assert shares.survey_due(0.0)
    assert not shares.survey_due(0.1)
    shares.surveyed({"a": 500}, took_s, took_s)
    assert not shares.survey_due(next_due - 0.01)
    assert shares.survey_due(next_due + 0.01)


def test_next_steps_queued_by_the_worker_wait_without_a_count() -> None:
    shares = Shares(16, 0.5)
    shares.surveyed({"a": 3}, 0.001, 0.0)
    shares.queued(["b", "b", "a"])
    assert shares.waiting == {"a": 4, "b": 2}
    plan = shares.plan({"a": 16}, {}, 0, 32)
    assert plan is not None and plan.quotas == {"b": 2}
