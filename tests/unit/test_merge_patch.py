"""The JSON merge patch (RFC 7386) a rerun applies to an order's data: the RFC's own examples,
and the limits intake holds data to."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.errors import InvalidInput
from fabflow.order_input import MAX_JSON_DEPTH, merge_patch, patched_data

# RFC 7386, appendix A: (target, patch, result)
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_the_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_the_target_is_left_as_it_was() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_patched_data_is_held_to_intakes_limits() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = {"x": deep}
    with pytest.raises(InvalidInput) as refused:
        patched_data({"name": "Ada"}, {"deep": deep, "big": 2**70})
    pointers = {p.pointer for p in refused.value.problems}
    assert "/data/big" in pointers
    assert any(p.startswith("/data/deep") for p in pointers)

    with pytest.raises(InvalidInput, match="more than 100 keys"):
        patched_data({f"k{i}": i for i in range(100)}, {"one more": 1})
    assert patched_data({"a": 1}, {"a": None, "b": 2}) == {"b": 2}
