"""``fabflow worker`` as real processes: start, SIGKILL, drain, and read what they logged."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FABFLOW = Path(sys.executable).with_name("fabflow")


def worker_env(**settings: str) -> dict[str, str]:
    """The test's environment without any FABFLOW_* of its own, plus ``settings`` given as
    ``database_url="..."`` for FABFLOW_DATABASE_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABFLOW_")}
    env.update({f"FABFLOW_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT prints every thread's stack: see ``dump_stacks``
    return env


@dataclass
class WorkerProcess:
    """One ``fabflow worker`` process; its output goes to ``log_path``."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def spawn(cls, env: dict[str, str], log_path: Path, *args: str) -> WorkerProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [str(FABFLOW), "worker", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the test run is not delivered twice
            )
        return cls(proc, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def id_prefix(self) -> str:
        """What the worker's id starts with (``<host>-<pid>-``): its rows in the store."""
        return f"{socket.gethostname()}-{self.pid}-"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        """It said it is running and has not exited."""
        return self.proc.poll() is None and " running (concurrency" in self.log()

    def wait_running(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.running():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not running after {timeout} s:\n{self.log()}")
            time.sleep(0.02)

    def dump_stacks(self) -> str:
        """Abort a stuck worker so that its log shows where each thread was."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(10)
        return self.log()

    def kill(self) -> int:
        """SIGKILL the worker alone, as a crash or the OOM killer would; then sweep what it
        left behind (its process group). Returns how many processes it left behind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        left = group_members(self.pid)
        if left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        return len(left)

    def drain(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not drain in {timeout} s:\n{self.log()}") from None


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def tail(workers: list[WorkerProcess], lines: int = 30) -> str:
    """The last lines of each worker's log, for a failure message."""
    parts = []
    for w in workers:
        text = w.log().splitlines()[-lines:]
        parts.append(f"--- worker pid {w.pid} (exit {w.proc.poll()}) ---\n" + "\n".join(text))
    return "\n".join(parts)
