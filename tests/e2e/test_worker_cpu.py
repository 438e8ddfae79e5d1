"""``fabflow worker --cpu N``: every thread of the worker runs on CPU N, the processes that
build production files run on every CPU the worker had, and a CPU the worker may not use is
refused with the settings exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.support.workers import FABFLOW, WorkerProcess, worker_env

CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
pytestmark = pytest.mark.skipif(len(CPUS) < 2, reason="needs Linux and two CPUs to tell")


def thread_cpus(pid: int) -> list[str]:
    """The CPUs each thread of ``pid`` may run on, as the kernel lists them."""
    lists = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        lists += [line.split()[1] for line in status.splitlines() if "Cpus_allowed_list" in line]
    return lists


def test_a_pinned_worker_runs_every_thread_on_its_cpu(tmp_path: Path) -> None:
    cpu = CPUS[-1]
    worker = WorkerProcess.spawn(
        worker_env(data_dir=str(tmp_path)), tmp_path / "worker.log", "--cpu", str(cpu)
    )
    try:
        worker.wait_running()
        assert f"pinned to CPU {cpu})" in worker.log()
        deadline = time.monotonic() + 10
        while len(cpus := thread_cpus(worker.pid)) < 2:  # the database thread starts at once
            assert time.monotonic() < deadline, f"one thread only: {cpus}"
            time.sleep(0.05)
        assert cpus == [str(cpu)] * len(cpus)
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(30) == 0
    finally:
        worker.kill()


def test_production_processes_of_a_pinned_worker_use_every_cpu(tmp_path: Path) -> None:
    script = tmp_path / "pinned_pool.py"
    script.write_text(
        "import asyncio, os\n"
        "from fabflow.engine.cpu import pin_to\n"
        "from fabflow.production.pool import WarmPool\n"
        "async def main():\n"
        f"    pin_to({CPUS[0]})\n"
        "    pool = WarmPool(1)\n"
        "    await pool.start()\n"
        "    try:\n"
        "        child = await pool.run(os.sched_getaffinity, 0, timeout=60)\n"
        "        print(sorted(os.sched_getaffinity(0)), sorted(child))\n"
        "    finally:\n"
        "        await pool.close()\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == f"{[CPUS[0]]} {CPUS}"


def test_a_cpu_the_worker_may_not_use_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(FABFLOW), "worker", "--cpu", "4095"],
        env=worker_env(data_dir=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    allowed = ",".join(map(str, CPUS))
    assert f"error: --cpu 4095: this process may only run on CPUs {allowed}" in done.stderr
