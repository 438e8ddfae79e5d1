"""Fair shares of a worker's slots between tenants, so that one tenant's backlog or slow
receiver cannot keep another tenant's orders waiting (docs/engine.md, "Fairness between
tenants").

- A tenant's **cap** is ``FABFLOW_TENANT_SHARE`` of the worker's concurrency (rounded down,
  at least one slot).
- **Claims go round-robin** among the tenants with runnable work, the one holding the fewest
  of this worker's attempts (running or claimed ahead) first, the one served least recently
  on a tie: a tenant below its cap is always served before one at or past it.
- **Alone, a tenant uses every slot**: past its cap it holds slots nobody else waits for. The
  slots it holds past its cap are *borrowed*: while it holds them, a tenant below its cap
  starts on an extra slot, one per borrowed slot, instead of waiting for the borrower's steps
  to end. So a worker runs at most ``2 x concurrency - cap`` attempts, and only until the
  borrower's attempts end: freed slots go to the tenants below their cap first.
- **Who waits**: a claim shows the tenants at the head of the queue. When the queue runs
  deeper than the worker claims, the worker asks how much each tenant has runnable (a count
  over every queued attempt) every quarter of a second, less often when that count is slow.

Everything here is pure bookkeeping: the worker does the I/O.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from fabflow.engine.leases import Ready
from fabflow.store.queue.records import Claim

SURVEY_EVERY_S = 0.25  # how often a worker with a deep queue asks who has runnable work
SURVEY_SHARE = 0.05  # ... but at most this share of the time: a slow count runs less often


def tenant_cap(concurrency: int, share: float) -> int:
    """The slots one tenant may hold while another tenant waits: at least one."""
    return max(1, math.floor(concurrency * share + 1e-9))  # 10 x 0.7 is 7, not 6


def borrowed(running: Mapping[str, int], cap: int) -> int:
    """The slots tenants hold past their cap."""
    return sum(n - cap for n in running.values() if n > cap)


def allocate(
    held: Mapping[str, int],
    waiting: Mapping[str, int],
    cap: int,
    room: int,
    fair_room: int,
    served: Mapping[str, int],
) -> dict[str, int]:
    """Share out claims one at a time, each to the waiting tenant holding the fewest (then
    the one ``served`` least recently): up to ``fair_room`` in all for tenants below ``cap``,
    up to ``room`` for the others. Returns the claims of each tenant, in the order served."""
    heap = [(held.get(t, 0), served.get(t, 0), t) for t, n in waiting.items() if n > 0]
    heapq.heapify(heap)
    turn = max(served.values(), default=0)
    given: dict[str, int] = {}
    total = 0
    while heap:
        count, _, tenant = heapq.heappop(heap)
        if total >= (fair_room if count < cap else room):
            break  # those left hold as many or more: no room for them either
        given[tenant] = given.get(tenant, 0) + 1
        total += 1
        turn += 1  # served now: last among those holding as many
        if given[tenant] < waiting[tenant]:
            heapq.heappush(heap, (count + 1, turn, tenant))
    return given


@dataclass(frozen=True, slots=True)
class Plan:
    """A fair claim: ``quotas`` of each tenant's attempts, then ``rest`` of anyone's."""

    quotas: dict[str, int]
    rest: int

    @property
    def asked(self) -> int:
        return self.rest + sum(self.quotas.values())


class Shares:
    """What a worker knows of the tenants waiting for its slots, and how it shares them."""

    def __init__(self, concurrency: int, share: float) -> None:
        self.concurrency = concurrency
        self.cap = tenant_cap(concurrency, share)
        self.waiting: dict[str, int] = {}  # runnable attempts by tenant, as last counted
        self.deep = False  # the queue may hold more than the last claim saw
        self._served: dict[str, int] = {}  # tenant: when it last got a claim
        self._cycles = 0
        self._next_survey = 0.0

    # -- who waits -----------------------------------------------------------------------

    def survey_due(self, now: float) -> bool:
        """Count who waits: only while the queue runs deeper than the claims see, and every
        SURVEY_EVERY_S at most."""
        if not self.deep or now < self._next_survey:
            return False
        self._next_survey = now + SURVEY_EVERY_S
        return True

    def until_survey(self, now: float) -> float:
        """Seconds until the next count is due (infinite while none is needed)."""
        return max(0.0, self._next_survey - now) if self.deep else math.inf

    def surveyed(self, counts: Mapping[str, int], took_s: float, now: float) -> None:
        self.waiting = {t: n for t, n in counts.items() if n > 0}
        self._next_survey = max(self._next_survey, now + took_s / SURVEY_SHARE)

    def queued(self, tenants: Iterable[str]) -> None:
        """Attempts of ``tenants`` (one each) were queued by this worker's transitions."""
        for tenant in tenants:
            self.waiting[tenant] = self.waiting.get(tenant, 0) + 1

    # -- claims --------------------------------------------------------------------------

    def plan(
        self, running: Mapping[str, int], ready: Mapping[str, int], room: int, most: int
    ) -> Plan | None:
        """The fair claim for a worker with ``room`` to claim ahead (``most`` at once), or
        None when one tenant alone is involved: then the oldest attempts are claimed."""
        waiting = self.waiting
        if not waiting:
            return None
        if len(waiting) == 1 and all(t in waiting for t in (*running, *ready)):
            return None
        held = Counter(running)
        held.update(ready)
        room = min(max(room, 0), most)
        fair_room = min(max(room + self.concurrency - self.cap, 0), most)
        quotas = allocate(held, waiting, self.cap, room, fair_room, self._served)
        return Plan(quotas, max(0, room - sum(quotas.values())))

    def claimed(self, claims: list[Claim], plan: Plan | None, asked: int) -> None:
        """Take the claims off what is known to wait; with fewer claims than asked of anyone's
        attempts, the queue held no more."""
        self._cycles += 1
        got = Counter(c.tenant_id for c in claims)
        for tenant, n in got.items():
            self._served[tenant] = self._cycles
            left = self.waiting.get(tenant, 0) - n
            if left > 0:
                self.waiting[tenant] = left
            else:
                self.waiting.pop(tenant, None)
        if plan is not None:
            for tenant, wanted in plan.quotas.items():
                if got[tenant] < wanted:  # fewer than counted: others took them meanwhile
                    self.waiting.pop(tenant, None)
        open_ended = plan.rest if plan is not None else asked
        if asked > 0 and open_ended > 0 and len(claims) < asked:
            self.waiting.clear()
            self.deep = False
        else:
            self.deep = True  # a full claim, or none made: more may be queued unseen


class ReadyQueue:
    """Attempts claimed ahead, in claim order, counted by tenant; the next to start is the
    first of a tenant below its cap, if any."""

    def __init__(self) -> None:
        self._items: deque[Ready] = deque()
        self.tenants: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[Ready]:
        return iter(self._items)

    def extend(self, items: Iterable[Ready]) -> None:
        for item in items:
            self._items.append(item)
            self.tenants[item.work.claim.tenant_id] += 1

    def clear(self) -> None:
        self._items.clear()
        self.tenants.clear()

    def keep(self, wanted: Callable[[Ready], bool]) -> None:
        items = [r for r in self._items if wanted(r)]
        self.clear()
        self.extend(items)

    def next(self, running: Mapping[str, int], busy: int, slots: int, cap: int) -> Ready | None:
        """The attempt to start now, with ``busy`` of ``slots`` taken (``running`` by
        tenant); None while it must wait."""
        if not self._items:
            return None
        under = {t for t in self.tenants if running.get(t, 0) < cap}
        if busy < slots:
            head = self._items[0]
            if not under or head.work.claim.tenant_id in under:
                return head
            return self._first_of(under)
        if under and busy < slots + borrowed(running, cap):
            return self._first_of(under)
        return None

    def remove(self, item: Ready) -> None:
        if self._items[0] is item:
            self._items.popleft()
        else:
            index = next(i for i, r in enumerate(self._items) if r is item)
            del self._items[index]
        tenant = item.work.claim.tenant_id
        self.tenants[tenant] -= 1
        if self.tenants[tenant] <= 0:
            del self.tenants[tenant]

    def _first_of(self, tenants: set[str]) -> Ready:
        return next(r for r in self._items if r.work.claim.tenant_id in tenants)
