"""The step graph of a flow: who points where, loops, and what the first step reaches.

Works on plain records so the validator can use it on documents that are only partly valid.
Every walk is iterative and linear in the number of steps: a 5,000-step chain must not hit
Python's recursion limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

EDGE_KEYS = ("onSuccess", "onError")


class Node(NamedTuple):
    """A step as the graph sees it: its id and the ids it points at (None: not given/invalid).

    ``branches`` are a choice's other edges: ``(key, target)`` where ``key`` is the path of
    the option in the step (``options/rules/0/next``, ``options/otherwise``)."""

    step_id: str | None
    on_success: str | None
    on_error: str | None
    branches: tuple[tuple[str, str], ...] = ()

    def targets(self) -> tuple[tuple[str, str | None], ...]:
        """``(key, target id)`` for both edge keys, then the branches."""
        return (("onSuccess", self.on_success), ("onError", self.on_error), *self.branches)


def choice_branches(options: object) -> tuple[tuple[str, str], ...]:
    """The branches of a choice's options (raw JSON: only the well-typed ones)."""
    if not isinstance(options, dict):
        return ()
    found: list[tuple[str, str]] = []
    rules = options.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        target = rule.get("next") if isinstance(rule, dict) else None
        if isinstance(target, str) and target:
            found.append((f"options/rules/{i}/next", target))
    otherwise = options.get("otherwise")
    if isinstance(otherwise, str) and otherwise:
        found.append(("options/otherwise", otherwise))
    return tuple(found)


@dataclass(frozen=True)
class Cycle:
    """A loop found by ``find_cycles``: it closes at ``nodes[index].<key>``."""

    index: int
    key: str
    path: tuple[str, ...]  # ids along the loop, first id repeated at the end


def index_ids(nodes: list[Node]) -> dict[str, int]:
    """Step id -> position of its first occurrence."""
    ids: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.step_id is not None:
            ids.setdefault(node.step_id, i)
    return ids


def edges(nodes: list[Node], ids: dict[str, int]) -> list[list[tuple[str, int]]]:
    """Adjacency lists ``(key, target position)``; dangling and self edges are left out."""
    out: list[list[tuple[str, int]]] = []
    for i, (_, on_success, on_error, branches) in enumerate(nodes):
        row = []
        # Written out rather than looped over the two keys: this runs for every step.
        j = ids.get(on_success) if on_success is not None else None
        if j is not None and j != i:
            row.append(("onSuccess", j))
        j = ids.get(on_error) if on_error is not None else None
        if j is not None and j != i:
            row.append(("onError", j))
        for key, target in branches:
            j = ids.get(target)
            if j is not None and j != i:
                row.append((key, j))
        out.append(row)
    return out


def find_cycles(
    nodes: list[Node], adjacency: list[list[tuple[str, int]]], limit: int = 20
) -> tuple[list[Cycle], int]:
    """The loops closed by the back edges of an iterative depth-first search.

    Returns at most ``limit`` loops (naming a loop costs its length) and the count of all.
    """
    colour = [_WHITE] * len(nodes)
    depth = [0] * len(nodes)  # position on the current path, valid while grey
    cycles: list[Cycle] = []
    found = 0
    for root in range(len(nodes)):
        if colour[root] != _WHITE:
            continue
        colour[root] = _GREY
        path = [root]
        pending = [iter(adjacency[root])]
        while pending:
            for key, target in pending[-1]:
                if colour[target] == _WHITE:
                    colour[target], depth[target] = _GREY, len(path)
                    path.append(target)
                    pending.append(iter(adjacency[target]))
                    break
                if colour[target] == _GREY:
                    found += 1
                    if found <= limit:
                        cycles.append(_cycle(nodes, path[depth[target] :], key))
            else:  # every edge of the node on top is done
                colour[path.pop()] = _BLACK
                pending.pop()
    return cycles, found


_WHITE, _GREY, _BLACK = 0, 1, 2


def _cycle(nodes: list[Node], loop: list[int], key: str) -> Cycle:
    names = [nodes[n].step_id or "?" for n in loop]
    return Cycle(loop[-1], key, (*names, names[0]))


def reachable(adjacency: list[list[tuple[str, int]]], start: int = 0) -> list[bool]:
    """Which positions a path from ``start`` reaches (breadth first)."""
    seen = [False] * len(adjacency)
    if not adjacency:
        return seen
    seen[start] = True
    queue = deque([start])
    while queue:
        for _, target in adjacency[queue.popleft()]:
            if not seen[target]:
                seen[target] = True
                queue.append(target)
    return seen


def error_only(steps: list[dict[str, object]], step_id: str) -> bool:
    """Whether only an error path reaches ``step_id`` from the first step: no path of
    successes and choices leads there (a flow's error handler). ``steps`` as stored."""
    nodes = [
        # No onError edges: only what succeeding steps reach.
        Node(
            _text(s.get("stepDefinitionId")),
            _text(s.get("onSuccess")),
            None,
            choice_branches(s.get("options")),
        )
        for s in steps
    ]
    ids = index_ids(nodes)
    if step_id not in ids:
        return False
    return not reachable(edges(nodes, ids))[ids[step_id]]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
