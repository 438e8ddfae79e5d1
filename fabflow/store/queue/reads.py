"""How much of its order a claimed attempt needs, and reading no more than that.

A step whose executor reads nothing of the order (a light step) reads none of it, unless its
transition leads to choices: they are evaluated on the order in that transition. Then it
reads what the choices read: the order columns behind the keys their expressions name
(``order.data.country``: the ``data`` column), else the order row alone (no attempts or
status history), else, for a choice that reads those, the whole order resource.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from fabflow.flows.choice import ChoiceOptions
from fabflow.flows.expressions import order_keys
from fabflow.flows.model import Flow
from fabflow.resources import CREATED_STATUS
from fabflow.store import fastpath
from fabflow.store.queue.records import Claim
from fabflow.store.schema import orders

FULL = "full"  # the order resource: with its attempts, status history and health
ALONE = "alone"  # the order resource without its attempts and status history
# What an attempt reads of its order: FULL, ALONE, the order keys its choices read (a
# frozenset of ``KEYED``'s keys), or nothing but its id (None).
Read = str | frozenset[str] | None

# The order document's keys that are one column of the order row each, as the order resource
# shows them (``fabflow.resources.order_resource``): the column, and what a null shows as.
KEYED: Mapping[str, tuple[str, Callable[[], Any]]] = {
    "id": ("id", lambda: None),
    "externalId": ("external_id", lambda: None),
    "status": ("status", lambda: CREATED_STATUS),
    "customer": ("customer", lambda: None),
    "lines": ("lines", lambda: None),
    "data": ("data", lambda: None),
    "stepData": ("step_data", dict),
}
_STATEMENTS: dict[frozenset[str], Select[Any]] = {}  # by the keys read: one per set, reused


def order_read(
    flow: Flow,
    claim: Claim,
    light_types: Collection[str],
    known: dict[tuple[int, str], tuple[Flow, Read]],
) -> Read:
    """How much of the order ``claim``'s attempt needs. ``known`` keeps what the choices
    after each step read, by flow and step (a flow version never changes, and the store keeps
    one ``Flow`` per version)."""
    step_id = claim.step_id
    if step_id not in flow or flow.step(step_id).type not in light_types:
        return FULL
    if not flow.leads_to_choice(step_id):
        return None
    found = known.get((id(flow), step_id))
    if found is None or found[0] is not flow:  # an id is reused once its flow is gone
        found = known[(id(flow), step_id)] = (flow, _choices_read(flow, step_id))
    return found[1]


def _choices_read(flow: Flow, step_id: str) -> Read:
    if flow.choices_read_history(step_id):
        return FULL
    keys: set[str] = set()
    for when in _choice_expressions(flow, step_id):
        read = order_keys(when)
        if read is None or not read <= KEYED.keys():
            return ALONE
        keys |= read
    return frozenset(keys) or None  # none: the choices read nothing of the order but its id


def _choice_expressions(flow: Flow, step_id: str) -> Iterator[str]:
    """The ``when`` of every choice that ``step_id`` can lead to through choices."""
    step = flow.step(step_id)
    todo = [step.on_success, step.on_error]
    seen: set[str] = set()
    while todo:
        next_id = todo.pop()
        if next_id is None or next_id in seen or not flow.is_choice(next_id):
            continue
        seen.add(next_id)
        choice = flow.step(next_id)
        options = choice.options
        assert isinstance(options, ChoiceOptions)
        yield from (rule.when for rule in options.rules)
        todo.extend([options.otherwise, choice.on_error, *(r.next for r in options.rules)])


def read_keyed(conn: Connection, wanted: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """The orders of ``wanted`` (order id -> keys) as documents with those keys alone (and
    ``id``), by order id; one query per set of keys (a batch usually has one)."""
    by_keys: dict[frozenset[str], list[str]] = {}
    for order_id, keys in wanted.items():
        by_keys.setdefault(keys, []).append(order_id)
    found: dict[str, Any] = {}
    for keys, ids in by_keys.items():
        shown = [(key, *KEYED[key]) for key in keys]
        for row in fastpath.fetch(conn, _statement(keys), {"ids": ids}):
            order = {"id": row["id"]}
            for key, column, if_null in shown:
                value = row[column]
                order[key] = if_null() if value is None else value
            found[row["id"]] = order
    return found


def _statement(keys: frozenset[str]) -> Select[Any]:
    statement = _STATEMENTS.get(keys)
    if statement is None:
        columns = [orders.c[KEYED[key][0]] for key in sorted(keys - {"id"})]
        statement = select(orders.c.id, *columns).where(
            orders.c.id.in_(bindparam("ids", expanding=True))
        )
        _STATEMENTS[keys] = statement
    return statement
