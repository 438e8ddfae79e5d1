"""The turns of one process's SQLite writers: the worker's queue goes before the API's."""

from __future__ import annotations

import threading
import time

from fabflow.store.repository import WriteTurns


def _start(turns: WriteTurns, order: list[str], name: str, *, first: bool) -> threading.Thread:
    def write() -> None:
        with turns.turn(first=first):
            order.append(name)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _until(check: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not reached"
        time.sleep(0.001)


def test_a_writer_asking_first_goes_before_the_writers_already_waiting() -> None:
    turns = WriteTurns()
    order: list[str] = []
    turns.acquire()  # the API's group commit, say, holds the lock
    api = [_start(turns, order, f"api-{n}", first=False) for n in range(3)]
    time.sleep(0.05)  # they wait on the lock
    queue = _start(turns, order, "queue", first=True)
    _until(lambda: turns._first_waiting == 1)
    turns.release()
    for thread in [queue, *api]:
        thread.join(2)
    assert order[0] == "queue"
    assert sorted(order[1:]) == ["api-0", "api-1", "api-2"]


def test_while_one_waits_to_go_first_the_lock_is_not_free_to_try() -> None:
    turns = WriteTurns()
    order: list[str] = []
    turns.acquire()
    queue = _start(turns, order, "queue", first=True)
    _until(lambda: turns._first_waiting == 1)
    tried: list[bool] = []
    other = threading.Thread(target=lambda: tried.append(turns.try_acquire()))
    other.start()
    other.join(2)
    assert tried == [False]
    turns.release()
    queue.join(2)
    assert order == ["queue"]
    assert turns.try_acquire()
    turns.release()


def test_the_holder_takes_it_again_at_once_even_with_one_waiting_first() -> None:
    turns = WriteTurns()
    order: list[str] = []
    with turns.turn():
        queue = _start(turns, order, "queue", first=True)
        _until(lambda: turns._first_waiting == 1)
        with turns.turn():  # a nested write of the same thread must not wait for the queue
            order.append("nested")
        assert turns.try_acquire()  # the holder's try succeeds too
        turns.release()
    queue.join(2)
    assert order == ["nested", "queue"]
