"""What of its order a claimed attempt reads: a light step that leads to choices reads what
their expressions read (the columns behind ``order.<key>``), else more."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.flows.expressions import order_keys
from fabflow.flows.options import OptionsModel
from fabflow.flows.registry import step_types
from fabflow.flows.validate import load_flow
from fabflow.store.queue.reads import ALONE, FULL, Read, order_read
from fabflow.store.queue.records import Claim


@pytest.mark.parametrize(
    ("when", "keys"),
    [
        ('order.data.country == "BE"', {"data"}),
        ('order["data"].country == "BE" and order.lines | length > 1', {"data", "lines"}),
        ('order.lines[0].parameters.material == "gold"', {"lines"}),
        ("order.data.rush is defined", {"data"}),
        ('order.customer.name == "Ada" or order.status != "x"', {"customer", "status"}),
        ("steps.a.response.status == 200", {"files"}),  # a step's files are the order's
        ('error.message == "x" and flow.version > 1', set()),
        ("true", set()),
        ("order | length > 3", None),  # the order whole
        ("order[order.data.key] == 1", None),  # a key known at run time only
        ("order[0] == 1", None),
        ("order.data.country ==", None),  # does not parse
    ],
)
def test_an_expression_says_which_keys_of_the_order_it_reads(
    when: str, keys: set[str] | None
) -> None:
    found = order_keys(when)
    assert found == (None if keys is None else frozenset(keys))


def _flow(*whens: str) -> Any:
    steps: list[dict[str, Any]] = [
        {"stepDefinitionId": "a", "type": "light", "successStatus": "A", "options": {}},
        {"stepDefinitionId": "b", "type": "light", "successStatus": "B", "options": {}},
    ]
    steps[0]["onSuccess"] = "c0"
    for i, when in enumerate(whens):
        after = f"c{i + 1}" if i + 1 < len(whens) else "b"
        rules = [{"when": when, "next": after}]
        options = {"rules": rules, "otherwise": "b"}
        steps.append({"stepDefinitionId": f"c{i}", "type": "choice", "options": options})
    result = load_flow(steps, types={**step_types(), "light": OptionsModel})
    assert result.flow is not None, result.errors
    return result.flow


def _claim(step_id: str, step_type: str = "light") -> Claim:
    return Claim(1, 1, 1, "ex_1", "t", step_id, step_type, 1, 1, "ex_1.1", None, 0.0, 0.0)


@pytest.mark.parametrize(
    ("whens", "read"),
    [
        (['order.data.country == "BE"'], frozenset({"data"})),
        # Through choices in a row: what all of them read.
        (['order.data.country == "BE"', "order.customer.name is defined"], {"data", "customer"}),
        (["order.externalId == 'X'", "order.stepData.x == 1"], {"externalId", "stepData"}),
        (["flow.version > 1"], None),  # nothing of the order: its id is enough
        (["order.createdAt > '2026'"], ALONE),  # not one column as the document shows it
        (["order.files | length > 0"], ALONE),
        (["steps.a is defined"], ALONE),
        (["order | length > 0"], FULL),  # the order whole
        (["order.statusHistory | length > 1"], FULL),
        (['order.data.country == "BE"', 'order.health.state == "ok"'], FULL),
    ],
)
def test_a_light_step_reads_what_its_choices_read(whens: list[str], read: Any) -> None:
    flow = _flow(*whens)
    expected: Read = frozenset(read) if isinstance(read, set) else read
    assert order_read(flow, _claim("a"), {"light"}, {}) == expected
    assert order_read(flow, _claim("b"), {"light"}, {}) is None  # leads to no choice
    assert order_read(flow, _claim("a"), set(), {}) == FULL  # a step that reads the order
