"""The real parts the browser tests drive: a ``fabflow serve`` process on a free port with its
own data folder, and an HTTP receiver on 127.0.0.1 whose answer the test sets (200 or 500)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
START_SECONDS = 90.0  # the first start loads fonts and products


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(data_dir: Path) -> dict[str, str]:
    """This process's environment minus any FABFLOW_* of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABFLOW_")}
    env.update(
        FABFLOW_DATA_DIR=str(data_dir),
        FABFLOW_OUTBOUND_ALLOW="127.0.0.1",
        FABFLOW_POLL_SECONDS="0.1",
        FABFLOW_PRODUCTION_PROCESSES="1",
    )
    return env


@dataclass
class Fabflow:
    """``fabflow serve`` in a subprocess, with one tenant's API key."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    key: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Fabflow:
        env = clean_env(self.data_dir)
        self.key = create_key(env)
        self.log_path = self.data_dir / "serve.log"
        command = [str(BIN / "fabflow"), "serve", "--port", str(self.port), "--workers", "1"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"fabflow serve exited: {self.log()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"fabflow serve did not become healthy: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def create_key(env: dict[str, str]) -> str:
    """A new key of tenant ``t``: the last line ``fabflow apikey create`` prints."""
    done = subprocess.run(
        [str(BIN / "fabflow"), "apikey", "create", "--tenant", "t"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1].strip()


@dataclass
class Receiver:
    """An order receiver on 127.0.0.1 answering ``status`` (the test flips it to fail or fix)."""

    status: int = 200
    hits: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/orders"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.hits.append({"path": self.path, "bytes": len(body)})
                status = receiver.status
                payload = b'{"ok": true}' if status < 400 else b'{"error": "receiver is down"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass  # keep test output quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
