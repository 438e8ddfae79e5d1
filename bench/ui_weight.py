"""The orders page with 1,000 orders in the store: what it weighs and when it is usable.

    python -m bench.ui_weight [--orders 1000] [--loads 7]

Starts ``fabflow serve`` (one worker, SQLite, a scratch data folder) and an HTTP receiver on
127.0.0.1, seeds ``--orders`` orders over two flows as a shop would have them (a REST step
that succeeds, or fails for one order in ten after a retry; a person's confirmation that waits),
lets the worker run them, then opens ``/orders`` in Debian's Chromium (``/usr/bin/chromium``,
``FABFLOW_CHROMIUM`` names another) through Playwright, ``--loads`` times on a cold cache.

Prints:

- ``orders_page_kb=``: every response of one cold load, bodies and headers (HTML, CSS, JS,
  the API answers), the live event stream left out (it never ends); ``orders_page_requests=``;
- ``orders_api_kb=``: the list's answer alone (the first 50 orders);
- ``orders_page_interactive_ms=`` (median) and ``orders_page_interactive_max_ms=``: navigation
  start to the rows and counts drawn, the page's own clock;
- ``orders_api_ms=``: the list request's duration (median), as the page timed it.

Goal (issue 23): under 300 KB and interactive under 1 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import FABFLOW, api_key, free_port

CHROMIUM = os.environ.get("FABFLOW_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
NAMES = ["Ada Lovelace", "Zoë Müller", "Grace Hopper", "Jean-Luc Pérez", "Ken Thompson"]


_FAILS = re.compile(rb'"externalId":\s*"X-\d*4"')  # orders, ...: one in ten


def receiver() -> ThreadingHTTPServer:
    """Answers 200, and 500 to the orders whose external id ends in 4."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = 500 if _FAILS.search(body) else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def flows(url: str) -> list[dict[str, Any]]:
    post = {
        "stepDefinitionId": "notify-erp",
        "type": "consume-rest-api",
        "successStatus": "Sent to ERP",
        "options": {"uri": url},
        "retry": {"maxAttempts": 2, "initialDelay": 50},
    }
    check = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {"prompt": "Looks right?"},
    }
    return [
        {"id": "erp", "name": "ERP", "steps": [post]},
        {"id": "review", "name": "Review", "steps": [check]},
    ]


def order(n: int) -> dict[str, Any]:
    line = {"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": f"N{n}"}}
    name = NAMES[n % len(NAMES)]
    email = f"customer{n}@example.com"
    return {
        "flowId": "review" if n % 10 >= 7 else "erp",
        "externalId": f"X-{n}",
        "customer": {"name": name, "email": email},
        "lines": [line],
        "data": {"channel": "web", "note": "gift wrap"},
    }


def seed(api: httpx.Client, count: int) -> dict[str, int]:
    """Post ``count`` orders, then wait for the worker; the orders by execution state."""
    for n in range(count):
        created = api.post("/api/orders", json=order(n))
        created.raise_for_status()
    deadline = time.monotonic() + 300
    while True:  # until the worker has run every order it can
        counts = api.get("/api/orders", params={"limit": 1}).json()["counts"]
        if counts["pending"] + counts["running"] == 0:
            return {state: n for state, n in counts.items() if n}
        if time.monotonic() > deadline:
            raise SystemExit(f"the orders did not settle: {counts}")
        time.sleep(0.5)


def measure(base: str, key: str, loads: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(base + "/orders")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#orders tbody tr")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        runs = [_load(page, base) for _ in range(loads)]
        browser.close()
    interactive = [r["interactive_ms"] for r in runs]
    return {
        "orders_page_kb": runs[-1]["bytes"] / 1024,
        "orders_page_requests": runs[-1]["requests"],
        "orders_api_kb": runs[-1]["api_bytes"] / 1024,
        "orders_page_interactive_ms": statistics.median(interactive),
        "orders_page_interactive_max_ms": max(interactive),
        "orders_api_ms": statistics.median(r["api_ms"] for r in runs),
    }


def _load(page: Any, base: str) -> dict[str, float]:
    sizes: dict[str, int] = {}

    def count(request: Any) -> None:
        got = request.sizes()
        sizes[request.url] = got["responseBodySize"] + got["responseHeadersSize"]

    page.on("requestfinished", count)
    page.goto("about:blank")
    page.goto(base + "/orders")
    page.wait_for_function(
        "() => document.querySelectorAll('#orders tbody tr').length >= 50"
        " && document.querySelectorAll('#counts button').length === 7"
    )
    drawn = page.evaluate("() => performance.now()")  # navigation start is the page's zero
    api_ms = page.evaluate(
        """() => performance.getEntriesByType('resource')
              .filter(e => e.name.includes('/api/orders?'))
              .map(e => e.duration)[0] || 0"""
    )
    page.wait_for_timeout(300)  # the last responses finish
    page.remove_listener("requestfinished", count)
    api = sum(size for url, size in sizes.items() if "/api/orders?" in url)
    return {
        "bytes": sum(sizes.values()),
        "requests": len(sizes),
        "api_bytes": api,
        "interactive_ms": float(drawn),
        "api_ms": float(api_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    rec = receiver()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FABFLOW_")}
        env.update(FABFLOW_DATA_DIR=tmp, FABFLOW_OUTBOUND_ALLOW="127.0.0.1")
        key = api_key(env, "shop")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [FABFLOW, "serve", "--port", str(port), "--workers", "1"]
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as api:
                _ready(api, server)
                url = f"http://127.0.0.1:{rec.server_address[1]}/orders"
                for flow in flows(url):
                    api.post("/api/flows", json=flow).raise_for_status()
                states = seed(api, args.orders)
            figures = measure(base, key, args.loads)
        finally:
            server.terminate()
            server.wait(15)
            rec.shutdown()
    print(f"orders={args.orders}")
    print("orders_by_state=" + ",".join(f"{k}:{n}" for k, n in sorted(states.items())))
    for name, value in figures.items():
        print(f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}")


def _ready(api: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"fabflow serve exited with {server.returncode}")
        try:
            if api.get("/api/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("fabflow serve did not become ready in 60 s")


if __name__ == "__main__":
    main()
