"""The step graph of a flow: who points where, loops, and what the first step reaches.

Works on plain records so the validator can use it on documents that are only partly valid.
Every walk is iterative and linear in the number of steps: a 5,000-step chain must not hit
Python's recursion limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

EDGE_KEYS = ("onSuccess", "onError")


@dataclass(frozen=True)
class Node:
    """A step as the graph sees it: its id and the ids it points at (None: not given/invalid)."""

    step_id: str | None
    on_success: str | None
    on_error: str | None

    def targets(self) -> tuple[tuple[str, str | None], ...]:
        """``(key, target id)`` for both edge keys."""
        return (("onSuccess", self.on_success), ("onError", self.on_error))


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
    for i, node in enumerate(nodes):
        row = [(k, ids[t]) for k, t in node.targets() if t is not None and t in ids]
        out.append([(k, j) for k, j in row if j != i])
    return out


def find_cycles(
    nodes: list[Node], adjacency: list[list[tuple[str, int]]], limit: int = 20
) -> tuple[list[Cycle], int]:
    """The loops closed by the back edges of an iterative depth-first search.

    Returns at most ``limit`` loops (naming a loop costs its length) and the count of all.
    """
    white, grey, black = 0, 1, 2
    colour = [white] * len(nodes)
    cycles: list[Cycle] = []
    found = 0
    for root in range(len(nodes)):
        if colour[root] != white:
            continue
        colour[root] = grey
        stack: list[tuple[int, int]] = [(root, 0)]  # (node, next edge to look at)
        on_path: dict[int, int] = {root: 0}  # node -> depth on the current path
        while stack:
            node, cursor = stack[-1]
            if cursor == len(adjacency[node]):
                stack.pop()
                del on_path[node]
                colour[node] = black
                continue
            stack[-1] = (node, cursor + 1)
            key, target = adjacency[node][cursor]
            if colour[target] == grey:
                found += 1
                if found > limit:
                    continue
                loop = [nodes[n].step_id or "?" for n, _ in stack[on_path[target] :]]
                cycles.append(Cycle(node, key, (*loop, loop[0])))
            elif colour[target] == white:
                colour[target] = grey
                on_path[target] = len(stack)
                stack.append((target, 0))
    return cycles, found


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
