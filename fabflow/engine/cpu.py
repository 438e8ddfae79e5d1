"""Pinning a worker process to one CPU (``fabflow worker --cpu N``), opt-in.

A worker runs Python on about one CPU at a time (one interpreter lock), so pinning costs it
little and lets an operator place one worker per CPU. It paid 20 to 30 % more REST steps per
second while the database work ran on a second thread, every hand-over of the lock then
crossing CPUs; since SQLite's hot path runs on the event loop itself, `python -m bench.steps
--cpu 0` measures no difference, on PostgreSQL neither (docs/steps.md, "Measuring").

Production files are built in child processes, which must not inherit the pin: they get back
the CPUs the worker had before (through ``UNPINNED_ENV``, which spawned children inherit).
"""

from __future__ import annotations

import os

from fabflow.errors import ConfigError

UNPINNED_ENV = "_FABFLOW_UNPINNED_CPUS"  # set by pin_to; read by production child processes


def pin_to(cpu: int) -> None:
    """Pin every thread of this process, and the threads it starts later, to ``cpu``."""
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("--cpu needs Linux (sched_setaffinity); leave it out here")
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise ConfigError(f"--cpu {cpu}: this process may only run on CPUs {_format(allowed)}")
    os.environ[UNPINNED_ENV] = _format(allowed)
    for tid in _threads():  # os.sched_setaffinity(0) sets the calling thread's only
        os.sched_setaffinity(tid, {cpu})


def unpin() -> None:
    """Back to the CPUs this process had before ``pin_to``, for all its threads (in a child
    process of a pinned worker: the CPUs the worker had)."""
    saved = os.environ.get(UNPINNED_ENV)
    if saved and hasattr(os, "sched_setaffinity"):
        cpus = {int(c) for c in saved.split(",")}
        for tid in _threads():
            os.sched_setaffinity(tid, cpus)


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _format(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
