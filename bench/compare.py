"""Run one benchmark on two checkouts, alternating, and print each figure's medians and ratio.

    python -m bench.compare --before ../baseline --rounds 3 -- bench.engine --db sqlite

``--before`` is another checkout of fabflow (``git worktree add ../baseline <commit>``); the
current one is ``--after`` (default: this checkout). Both run with this interpreter, each
with its own tree first on ``PYTHONPATH`` and as the working directory, in the order
before, after, before, after ... so that a drift of the host's speed falls on both. Prints
``<figure>_before=``, ``<figure>_after=`` and ``<figure>_ratio=`` (after over before) for
every numeric figure both printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

FIGURE = re.compile(r"^([A-Za-z0-9_=.,-]+?)=(-?\d+(?:\.\d+)?)\s*$")


def run(tree: Path, module_args: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-m", *module_args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(module_args)} failed in {tree}:\n{done.stderr[-2000:]}")
    figures = {}
    for line in done.stdout.splitlines():
        words = line.split()
        # "workers=2 steps_per_s=..." lines repeat their figures per worker count
        prefix = (
            words[0].replace("=", "") + "_" if words and words[0].startswith("workers=") else ""
        )
        for word in words:
            found = FIGURE.match(word)
            if found:
                figures[prefix + found.group(1)] = float(found.group(2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare to")
    parser.add_argument("--after", type=Path, default=Path(__file__).parent.parent)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each checkout")
    parser.add_argument("module", nargs=argparse.REMAINDER, help="-- bench.MODULE [its options]")
    args = parser.parse_args()
    module_args = [a for a in args.module if a != "--"]
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for name in ("before", "after"):
            tree = (args.before if name == "before" else args.after).resolve()
            runs[name].append(run(tree, module_args))
            print(f"# round {round_ + 1}/{args.rounds}: {name} done", file=sys.stderr)
    shared = set.intersection(*(set(r) for r in runs["before"] + runs["after"]))
    for key in sorted(shared):
        before = statistics.median(r[key] for r in runs["before"])
        after = statistics.median(r[key] for r in runs["after"])
        ratio = after / before if before else float("nan")
        print(f"{key}_before={before:g} {key}_after={after:g} {key}_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
