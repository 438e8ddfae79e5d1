"""Warm worker processes for CPU-bound generation, each of which can be killed on its own.

A ``ProcessPoolExecutor`` cannot stop one running task: cancelling its future does nothing
once the task has started. So the pool is a set of *slots*, each a one-process executor. A task
borrows a free slot; when the task overruns its deadline (or the awaiting coroutine is
cancelled), that slot's process is killed and the slot is replaced by a fresh one, while the
other slots, and the tasks running in them, carry on.

Processes start with ``forkserver`` (``spawn`` where there is none): never plain ``fork``, which
would copy the parent's event loop, threads and sockets into the child.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from fabflow.errors import PoolTimeout, WorkerCrashed

T = TypeVar("T")


class WarmPool:
    """``size`` long-lived worker processes; ``run`` awaits a task with a hard deadline."""

    def __init__(
        self,
        size: int,
        initializer: Callable[[], None] | None = None,
        start_method: str | None = None,
    ) -> None:
        self.size = max(1, size)
        self._initializer = initializer
        methods = multiprocessing.get_all_start_methods()
        self._context = multiprocessing.get_context(
            start_method or ("forkserver" if "forkserver" in methods else "spawn")
        )
        self._idle: asyncio.Queue[ProcessPoolExecutor] = asyncio.Queue()
        self._slots: set[ProcessPoolExecutor] = set()
        self._closed = False

    async def start(self, warm: Callable[[], Any] | None = None) -> None:
        """Start every process now; with ``warm``, run it in each so the first task is fast."""
        for _ in range(self.size):
            slot = self._new_slot()
            if warm is not None:
                await asyncio.wrap_future(slot.submit(warm))
            self._idle.put_nowait(slot)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """``fn(*args)`` in a worker process; raises ``PoolTimeout`` after ``timeout`` seconds."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        deadline = time.monotonic() + timeout
        try:
            slot = await asyncio.wait_for(self._idle.get(), timeout)
        except TimeoutError as exc:
            raise PoolTimeout(f"no worker process became free within {timeout:g} s") from exc
        replacement = slot
        try:
            future = asyncio.wrap_future(slot.submit(fn, *args))
            return await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            replacement = self._replace(slot)
            raise PoolTimeout(f"the task ran longer than {timeout:g} s and was stopped") from exc
        except asyncio.CancelledError:
            replacement = self._replace(slot)
            raise
        except BrokenProcessPool as exc:
            replacement = self._replace(slot)
            raise WorkerCrashed("the worker process died while running the task") from exc
        finally:
            if not self._closed:
                self._idle.put_nowait(replacement)

    async def close(self) -> None:
        """Stop every worker process, running or not."""
        self._closed = True
        for slot in list(self._slots):
            _kill(slot)
        self._slots.clear()

    def _new_slot(self) -> ProcessPoolExecutor:
        slot = ProcessPoolExecutor(
            1,
            mp_context=self._context,
            initializer=_child_start,
            initargs=(os.getpid(), self._initializer),
        )
        self._slots.add(slot)
        return slot

    def _replace(self, slot: ProcessPoolExecutor) -> ProcessPoolExecutor:
        self._slots.discard(slot)
        _kill(slot)
        return self._new_slot()


def _child_start(owner: int, initializer: Callable[[], None] | None) -> None:
    """In each worker process: exit when the owner dies, then the caller's initializer.

    A worker killed with SIGKILL cannot stop its pool, and the pool's processes are children
    of the forkserver, not of the worker (``getppid`` does not tell): they watch its pid.
    """
    threading.Thread(target=_watch_owner, args=(owner,), daemon=True).start()
    if initializer is not None:
        initializer()


def _watch_owner(owner: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by another user's process
            os._exit(1)


def _kill(slot: ProcessPoolExecutor) -> None:
    """Kill the slot's process (SIGKILL: a task stuck in C code ignores gentler signals)."""
    # The executor keeps its processes in a private map; it is the only way to reach them.
    processes = list((getattr(slot, "_processes", None) or {}).values())
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)
    slot.shutdown(wait=False, cancel_futures=True)
