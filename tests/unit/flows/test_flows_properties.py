"""Property tests: random valid flows load; random damage never crashes the validator."""

from __future__ import annotations

import copy
import json
from collections import deque
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabflow.flows.model import steps_adapter
from fabflow.flows.options import FILE_FORMATS
from fabflow.flows.registry import step_types
from fabflow.flows.validate import _check_steps, load_flow


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer`` in ``doc`` (RFC 6901); KeyError/IndexError when absent."""
    if pointer == "":
        return doc
    assert pointer.startswith("/"), pointer
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list):
            assert token.isdigit(), pointer
            doc = doc[int(token)]
        elif isinstance(doc, dict):
            doc = doc[token]
        else:
            raise KeyError(pointer)
    return doc


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text a flow may hold: no NUL (PostgreSQL cannot store it, so flows refuse it).
chars = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")
ids = st.text(chars, min_size=1, max_size=20)
# Labels made of alphanumeric parts joined by single hyphens: "ab--c" is refused by IDNA rules.
hosts = st.from_regex(r"[a-z][a-z0-9]{0,4}(-[a-z0-9]{1,4}){0,2}\.(com|org|example)", fullmatch=True)
emails = st.builds(
    "{}@{}".format, st.from_regex(r"[a-z0-9]{1,8}([._][a-z0-9]{1,8})?", fullmatch=True), hosts
)
uris = st.builds(
    "{}://{}{}".format, st.sampled_from(["http", "https", "HTTPS"]), hosts,
    st.sampled_from(["", "/", "/orders", "/a/b?x=1", ":8080/hook"]),
)  # fmt: skip
millis = st.floats(min_value=0.001, max_value=86_400_000, allow_nan=False) | st.integers(1, 10**8)

OPTIONS = {
    "generate-production-files": st.fixed_dictionaries(
        {}, optional={"fileFormat": st.sampled_from(FILE_FORMATS)}
    ),
    "consume-rest-api": st.fixed_dictionaries(
        {"uri": uris},
        optional={"method": st.sampled_from(["POST", "PUT"]), "waitForCallback": st.just(False)},
    ),
    "send-email": st.fixed_dictionaries(
        {"recipients": st.lists(emails, min_size=1, max_size=3),
         "subject": st.text(chars, max_size=30), "message": st.text(chars, max_size=60)},
        optional={"cc": st.lists(emails, max_size=2), "attachProductionFiles": st.booleans()},
    ),
    "manual-confirmation": st.fixed_dictionaries(
        {"prompt": st.text(chars, min_size=1, max_size=40)},
        optional={"assignees": st.lists(emails, max_size=3)},
    ),
}  # fmt: skip

retries = st.none() | st.integers(1, 10) | st.fixed_dictionaries(
    {"maxAttempts": st.integers(1, 100)},
    optional={"initialDelay": st.integers(0, 1000), "backoff": st.floats(1, 10)},
)  # fmt: skip


@st.composite
def valid_flows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-8 steps with unique ids; edges only point forward, so there is never a loop."""
    step_ids = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    steps = []
    for i, step_id in enumerate(step_ids):
        step_type = draw(st.sampled_from(sorted(OPTIONS)))
        later = (
            st.none() | st.sampled_from(step_ids[i + 1 :]) if i + 1 < len(step_ids) else st.none()
        )
        step: dict[str, Any] = {
            "stepDefinitionId": step_id,
            "type": step_type,
            "successStatus": draw(ids),
            "options": draw(OPTIONS[step_type]),
        }
        for key, value in (
            ("timeout", st.none() | millis),
            ("onSuccess", later),
            ("onError", later),
            ("retry", retries),
        ):
            if draw(st.booleans()):
                step[key] = draw(value)
        steps.append(step)
    return steps


@SETTINGS
@given(valid_flows())
def test_random_valid_flows_load(doc: list[dict[str, Any]]) -> None:
    result = load_flow(json.dumps(doc))
    assert result.errors == []
    assert all(p.severity == "warning" and p.message.startswith("step ") for p in result.problems)
    assert result.flow is not None
    assert load_flow(result.flow.to_json()).flow == result.flow


@SETTINGS
@given(valid_flows(), st.text(chars, min_size=1, max_size=20))
def test_object_form_puts_pointers_under_steps(doc: list[dict[str, Any]], name: str) -> None:
    doc[0]["bogus"] = 1
    problems = load_flow({"name": name, "steps": doc}).errors
    assert [p.pointer for p in problems] == ["/steps/0/bogus"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every object and array in ``doc``, the root included."""
    found = [path] if isinstance(doc, dict | list) else []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        found += containers(value, (*path, key))
    return found


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(draw: st.DrawFn, doc: Any) -> Any:
    """One random damage: delete a key, change a value's type, rename an id, or add junk."""
    kind = draw(st.sampled_from(["delete", "retype", "rename", "junk"]))
    target = at(doc, draw(st.sampled_from(containers(doc))))
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    if kind == "rename" and isinstance(doc, list) and doc and isinstance(doc[0], dict):
        others = [s.get("stepDefinitionId") for s in doc if isinstance(s, dict)]
        step = draw(st.sampled_from(doc))
        if isinstance(step, dict):
            step["stepDefinitionId"] = draw(st.sampled_from(others) | ids)
    elif kind == "delete" and keys:
        del target[draw(st.sampled_from(keys))]
    elif kind == "retype" and keys:
        target[draw(st.sampled_from(keys))] = draw(json_values)
    elif isinstance(target, dict):
        target[draw(st.text(max_size=12))] = draw(json_values)
    else:
        target.insert(draw(st.integers(0, len(target))), draw(json_values))
    return doc


@st.composite
def damaged_flows(draw: st.DrawFn) -> Any:
    doc: Any = draw(valid_flows())
    if draw(st.booleans()):
        doc = {"name": "flow", "steps": doc}
    for _ in range(draw(st.integers(1, 4))):
        doc = mutate(draw, doc)
    return doc


@SETTINGS
@given(damaged_flows())
def test_damaged_flows_never_crash_and_point_into_the_document(doc: Any) -> None:
    original = copy.deepcopy(doc)
    result = load_flow(json.dumps(doc))
    assert doc == original  # the validator does not modify what it checks
    assert (result.flow is None) == bool(result.errors)
    for problem in result.problems:
        assert problem.message
        resolve(doc, problem.pointer)  # raises if the pointer leads nowhere


@SETTINGS
@given(damaged_flows())
def test_fast_and_step_by_step_paths_agree(doc: Any) -> None:
    steps = doc.get("steps") if isinstance(doc, dict) else doc
    if not isinstance(steps, list):
        return
    types = step_types()
    try:
        steps_adapter(types).validate_python(steps)
        fast_ok = True
    except ValueError:
        fast_ok = False
    problems: list[Any] = []
    slow = _check_steps(steps, "", types, problems)
    assert fast_ok == (slow is not None and not problems)


def has_loop(n: int, edges: list[tuple[int, int]]) -> bool:
    """Reference answer by Kahn's algorithm: a loop exists iff no topological order does."""
    indegree = [0] * n
    for _, target in edges:
        indegree[target] += 1
    queue = deque(i for i in range(n) if indegree[i] == 0)
    seen = 0
    while queue:
        node = queue.popleft()
        seen += 1
        for source, target in edges:
            if source == node:
                indegree[target] -= 1
                if indegree[target] == 0:
                    queue.append(target)
    return seen < n


@SETTINGS
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.booleans()),
                max_size=2 * n,
            ),
        )
    )
)
def test_cycles_are_found_exactly_when_there_is_a_loop(
    case: tuple[int, list[tuple[int, int, bool]]],
) -> None:
    n, raw_edges = case
    doc: list[dict[str, Any]] = [
        {
            "stepDefinitionId": f"s{i}",
            "type": "generate-production-files",
            "successStatus": "ok",
            "options": {},
        }
        for i in range(n)
    ]
    edges = []
    for source, target, is_error in raw_edges:
        key = "onError" if is_error else "onSuccess"
        if source != target and key not in doc[source]:
            doc[source][key] = f"s{target}"
            edges.append((source, target))
    messages = [p.message for p in load_flow(doc).errors]
    assert any(m.startswith("cycle: ") for m in messages) == has_loop(n, edges)
    for message in messages:
        loop = message.removeprefix("cycle: ").split(";")[0].split(" -> ")
        assert loop[0] == loop[-1]
        assert all((int(a[1:]), int(b[1:])) in edges for a, b in pairwise(loop))
