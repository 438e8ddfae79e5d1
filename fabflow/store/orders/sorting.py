"""The orders list's order: the columns it sorts on, and cursors that keep their place.

A page ends at an order and the next page starts after it, in the same order. Sorted by
creation the cursor is the last order's id (ids are time-ordered, and unique); sorted by
another column it holds that column's value and the id together, ties broken by id, so pages
neither skip nor repeat orders that share a value, even while orders arrive or change. A
cursor names its sort: one made for another sort is refused rather than misread.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from fabflow.errors import InvalidInput, Problem
from fabflow.resources import CREATED_STATUS
from fabflow.store.schema import flows, orders

KEYS = ("created", "updated", "status", "flow")
_PREFIX = "s1."  # cursors of the sorts other than by creation


@dataclass(frozen=True)
class OrderSort:
    """``key`` (one of ``KEYS``) and the direction; newest first by default."""

    key: str = "created"
    descending: bool = True

    @classmethod
    def parse(cls, text: str) -> OrderSort:
        """``"updated"`` (ascending) or ``"-updated"`` (descending)."""
        key = text.removeprefix("-")
        if key not in KEYS:
            expected = ", ".join(KEYS)
            message = f"one of {expected}, with a leading - for descending (e.g. -updated)"
            raise InvalidInput(f"invalid request: query.sort: {message}", [_problem(message)])
        return cls(key, text.startswith("-"))

    @property
    def text(self) -> str:
        return ("-" if self.descending else "") + self.key


def _problem(message: str, name: str = "sort") -> Problem:
    return Problem(f"query.{name}", message)


def sort_value(sort: OrderSort) -> ColumnElement[Any]:
    """What the list sorts on, besides the id that breaks ties."""
    if sort.key == "updated":
        return orders.c.updated_at
    if sort.key == "status":  # as shown: no status yet reads "Created"; any case
        return func.lower(func.coalesce(orders.c.status, CREATED_STATUS))
    if sort.key == "flow":  # a subquery, not a join: the flow filter may join flows already
        flow_id = select(flows.c.flow_id).where(flows.c.pk == orders.c.flow_pk)
        return flow_id.scalar_subquery()
    return orders.c.id


def ordered(query: Select[Any], sort: OrderSort, cursor: str | None) -> Select[Any]:
    """``query`` (of the orders' ids) with the sort's value, in its order, after ``cursor``."""
    value = sort_value(sort)
    query = query.add_columns(value)
    keys = [value] if sort.key == "created" else [value, orders.c.id]
    by = [k.desc() if sort.descending else k.asc() for k in keys]
    if cursor:
        query = query.where(_after(sort, value, cursor))
    return query.order_by(*by)


def _after(sort: OrderSort, value: ColumnElement[Any], cursor: str) -> ColumnElement[bool]:
    if sort.key == "created":
        if cursor.startswith(_PREFIX):
            raise _wrong_cursor()
        return orders.c.id < cursor if sort.descending else orders.c.id > cursor
    last_value, last_id = _decode(sort, cursor)
    if sort.descending:
        return or_(value < last_value, and_(value == last_value, orders.c.id < last_id))
    return or_(value > last_value, and_(value == last_value, orders.c.id > last_id))


def cursor_after(sort: OrderSort, order_id: str, value: Any) -> str:
    """The cursor of the page that starts after the order ``order_id`` (sorted at ``value``)."""
    if sort.key == "created":
        return order_id
    raw = json.dumps([sort.key, value, order_id], separators=(",", ":")).encode()
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(sort: OrderSort, cursor: str) -> tuple[Any, str]:
    try:
        raw = cursor.removeprefix(_PREFIX)
        key, value, order_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError):
        raise _wrong_cursor() from None
    ours = cursor.startswith(_PREFIX) and key == sort.key
    if not ours or not isinstance(value, str | int | float) or not isinstance(order_id, str):
        raise _wrong_cursor()
    return value, order_id


def _wrong_cursor() -> InvalidInput:
    message = "not a nextCursor of this sort: pass the sort the cursor came with"
    return InvalidInput(f"invalid request: query.cursor: {message}", [_problem(message, "cursor")])
