"""The spec's example flow, run by a real ``fabflow run`` process against local servers.

The flow is the spec's, verbatim, except its ``uri`` (https://httpbin.org/anything is out of
reach here): it points at a local HTTP server, allowed with FABFLOW_OUTBOUND_ALLOW.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.steps.step_servers import MailServer, start_mail_server, start_receiver

SPEC = Path(__file__).parent.parent / "data" / "spec" / "full-example.json"
FABFLOW = str(Path(sys.executable).parent / "fabflow")

ORDER = {
    "externalId": "SHOP-1001",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": "Ada"}}],
}


@pytest.fixture
def mail() -> Any:
    server = start_mail_server()
    yield server
    server.controller.stop()


async def run_cli(tmp: Path, flow: Any, order: Any, env: dict[str, str]) -> tuple[int, str, str]:
    (tmp / "flow.json").write_text(json.dumps(flow))
    (tmp / "order.json").write_text(json.dumps(order))
    proc = await asyncio.create_subprocess_exec(
        FABFLOW,
        "run",
        "--json",
        str(tmp / "flow.json"),
        str(tmp / "order.json"),
        env={**os.environ, "FABFLOW_DATA_DIR": str(tmp / "data"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def spec_flow(uri: str, drop_generate: bool = False) -> list[dict[str, Any]]:
    flow: list[dict[str, Any]] = json.loads(SPEC.read_text())
    for step in flow:
        if step["type"] == "consume-rest-api":
            step["options"]["uri"] = uri
    if drop_generate:
        flow = [s for s in flow if s["type"] != "generate-production-files"]
    return flow


async def test_spec_example_flow_runs_end_to_end(tmp_path: Path, mail: MailServer) -> None:
    receiver, runner = await start_receiver()
    try:
        env = {
            "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
            "FABFLOW_SMTP_URL": f"smtp://127.0.0.1:{mail.port}",
        }
        code, out, err = await run_cli(tmp_path, spec_flow(receiver.url + "/anything"), ORDER, env)
    finally:
        await runner.cleanup()
    assert code == 0, err
    order = json.loads(out)
    assert order["status"] == "Success"
    assert [h["status"] for h in order["statusHistory"]] == [
        "In progress",
        "In progress",
        "Success",
    ]
    # The production file exists, is what the order says, and went to the ERP with the order.
    (stl,) = order["files"]
    assert stl["format"] == "stl" and stl["triangles"] > 100
    path = next((tmp_path / "data" / "files").rglob("*.stl"))
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == stl["sha256"]
    assert len(data) == 84 + 50 * stl["triangles"]
    (post,) = receiver.seen
    sent = json.loads(post.body)
    assert sent["id"] == order["id"] and sent["files"][0]["sha256"] == stl["sha256"]
    assert post.headers["Idempotency-Key"]
    (message,) = mail.handler.messages
    assert message.rcpt_tos == ["neil.benin@twikit.com"]
    assert b"Success subject" in message.original_content


async def test_rest_and_email_parts_without_generation(tmp_path: Path, mail: MailServer) -> None:
    receiver, runner = await start_receiver()
    try:
        env = {
            "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
            "FABFLOW_SMTP_URL": f"smtp://127.0.0.1:{mail.port}",
        }
        flow = spec_flow(receiver.url, drop_generate=True)
        code, out, err = await run_cli(tmp_path, flow, {**ORDER, "lines": []}, env)
    finally:
        await runner.cleanup()
    assert code == 0, err
    assert json.loads(out)["status"] == "Success"
    assert len(receiver.seen) == 1 and len(mail.handler.messages) == 1


async def test_a_step_that_waits_for_a_callback_exits_4_and_says_where(tmp_path: Path) -> None:
    """``fabflow run`` has no server to receive the callback: it stops at the wait, exit 4."""
    receiver, runner = await start_receiver()
    try:
        flow = spec_flow(receiver.url, drop_generate=True)
        consume = next(s for s in flow if s["type"] == "consume-rest-api")
        consume["options"]["waitForCallback"] = True
        env = {"FABFLOW_OUTBOUND_ALLOW": "127.0.0.1"}
        code, out, err = await run_cli(tmp_path, flow, {**ORDER, "lines": []}, env)
    finally:
        await runner.cleanup()
    assert code == 4, err
    order = json.loads(out)
    assert order["execution"]["state"] == "waiting"
    assert order["execution"]["attempts"][0]["wait"]["kind"] == "callback"
    assert "waits at step 'consume' for a callback" in err
    assert len(receiver.seen) == 1  # the order went out once, with where to call back


async def test_unreachable_erp_takes_the_error_path_and_exits_1(tmp_path: Path) -> None:
    # No FABFLOW_OUTBOUND_ALLOW: loopback is refused, a permanent error; no SMTP: the outbox.
    code, out, err = await run_cli(tmp_path, spec_flow("http://127.0.0.1:9/x", True), ORDER, {})
    assert code == 1, err
    order = json.loads(out)
    assert order["status"] == "Failed" and order["execution"]["state"] == "failed"
    first = order["execution"]["attempts"][0]
    assert first["error"]["type"] == "outbound_refused"
    assert "FABFLOW_OUTBOUND_ALLOW" in first["error"]["message"]
    outbox = list((tmp_path / "data" / "outbox").glob("*.eml"))
    assert len(outbox) == 1 and b"Error subject" in outbox[0].read_bytes()


async def test_an_order_the_product_cannot_make_exits_2_with_every_problem(tmp_path: Path) -> None:
    bad = {
        "lines": [
            {"id": "1", "product": "nameplat", "parameters": {}},
            {"id": "2", "product": "nameplate", "parameters": {"text": "Ada ☃", "width": -5}},
        ]
    }
    code, out, err = await run_cli(tmp_path, spec_flow("http://127.0.0.1:9"), bad, {})
    assert code == 2
    assert out == ""
    assert '/lines/0/product: no product is named "nameplat" (did you mean "nameplate"?)' in err
    assert "/lines/1/parameters/width" in err
    assert "/lines/1/parameters/text" in err and "☃" in err


async def test_the_success_email_carries_the_production_files(
    tmp_path: Path, mail: MailServer
) -> None:
    from email import message_from_bytes, policy

    receiver, runner = await start_receiver()
    flow = spec_flow(receiver.url)
    flow[2]["options"]["attachProductionFiles"] = True
    try:
        env = {
            "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
            "FABFLOW_SMTP_URL": f"smtp://127.0.0.1:{mail.port}",
        }
        code, out, err = await run_cli(tmp_path, flow, ORDER, env)
    finally:
        await runner.cleanup()
    assert code == 0, err
    (stl,) = json.loads(out)["files"]
    (message,) = mail.handler.messages
    parsed = message_from_bytes(message.original_content, policy=policy.default)
    (attachment,) = list(parsed.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == stl["name"]
    assert hashlib.sha256(attachment.get_payload(decode=True)).hexdigest() == stl["sha256"]
