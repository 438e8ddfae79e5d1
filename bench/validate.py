"""Benchmark: validate a generated flow of many steps and print the median time.

Usage: ``python bench/validate.py [--steps 2000] [--repeat 30]``; prints ``validate_ms=<median>``.
The flow chains every step on its success path, sends every failure to one error step, and
cycles through the three spec step types, so every check (options, references, loops,
reachability) runs on every step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from fabflow.flows.validate import load_flow

_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("generate-production-files", {"fileFormat": "stl"}),
    ("consume-rest-api", {"uri": "https://erp.example.com/orders"}),
    (
        "send-email",
        {"recipients": ["ops@example.com", "shop@example.com"], "subject": "s", "message": "m"},
    ),
]


def generate_flow(steps: int) -> list[dict[str, Any]]:
    """A valid flow of ``steps`` steps: a success chain plus one shared error step."""
    flow: list[dict[str, Any]] = []
    for i in range(steps - 1):
        step_type, options = _OPTIONS[i % len(_OPTIONS)]
        step: dict[str, Any] = {
            "stepDefinitionId": f"step-{i}",
            "type": step_type,
            "successStatus": f"Status {i}",
            "options": options,
            "timeout": 30_000,
            "onError": "error",
        }
        if i < steps - 2:
            step["onSuccess"] = f"step-{i + 1}"
        flow.append(step)
    error_options = {"recipients": ["ops@example.com"], "subject": "failed", "message": "x"}
    flow.append(
        {
            "stepDefinitionId": "error",
            "type": "send-email",
            "successStatus": "Failed",
            "options": error_options,
        }
    )
    return flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps in the flow")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs")
    args = parser.parse_args()
    text = json.dumps(generate_flow(args.steps))
    load_flow(text)  # warm-up: imports, caches, pydantic schema build
    timings, cpu = [], []
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = load_flow(text)
        timings.append((time.perf_counter() - start) * 1000)
        # CPU time too: on a shared machine the wall clock also counts other processes.
        cpu.append((time.process_time() - start_cpu) * 1000)
        if not result.ok:
            raise SystemExit(f"the generated flow is invalid: {result.problems[:3]}")
    print(f"steps={args.steps} repeat={args.repeat} bytes={len(text)}")
    print(f"cpu_ms={statistics.median(cpu):.2f}")
    print(f"validate_ms={statistics.median(timings):.2f}")


if __name__ == "__main__":
    main()
