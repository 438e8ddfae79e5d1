"""A private PostgreSQL cluster in a temporary folder, started with the installed binaries.

The chaos test restarts PostgreSQL; doing that to a cluster of its own disturbs nothing else
on the machine. ``initdb`` refuses to run as root, so as root the cluster belongs to the
``postgres`` user and every server command runs through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.steps.step_servers import free_port

BIN_DIRS = [Path(p) for p in os.environ.get("FABFLOW_TEST_PG_BIN", "").split(":") if p] + sorted(
    Path("/usr/lib/postgresql").glob("*/bin"), reverse=True
)
# Speed over durability, but only where a test cannot tell: fsync=off loses data on an OS
# crash, never on a kill of the server (the OS still holds the writes). synchronous_commit
# stays on: off would let an immediate stop lose commits the workers were told had happened.
SERVER_OPTIONS = (
    "-c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
)


def pg_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None where PostgreSQL is not installed."""
    for folder in BIN_DIRS:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@dataclass
class PgCluster:
    """One cluster: ``start()``, ``restart()``, ``stop()``; ``url(db)`` to connect."""

    bin_dir: Path
    root: Path
    port: int

    @classmethod
    def create(cls, bin_dir: Path) -> PgCluster:
        # Not under pytest's tmp_path: as root that folder is closed to the postgres user.
        root = Path(tempfile.mkdtemp(prefix="fabflow-pg-"))
        cluster = cls(bin_dir, root, free_port())
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster._run(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self, mode: str = "fast") -> float:
        """Restart the server (``fast``: clients are disconnected, ``immediate``: the server
        is killed and recovers from its WAL). Returns how long it was down, in seconds."""
        started = time.monotonic()
        self._pg_ctl("restart", "-m", mode)
        return time.monotonic() - started

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "stop", "-m", mode, check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"{SERVER_OPTIONS} -c port={self.port} -c listen_addresses=127.0.0.1 " + (
            f"-c unix_socket_directories={self.root}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            action,
            *extra,
        )

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{log}"
            )
