"""What aiohttp and asyncio raise becomes the step error operators see: type, retry, message."""

from __future__ import annotations

import ssl
import time

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from yarl import URL

from fabflow.errors import PermanentStepError, TransientStepError
from fabflow.steps.outbound import OutboundRefused
from fabflow.steps.rest import RestCall, rest_error

KEY = ConnectionKey("shop.example", 443, True, True, None, None, None, None)
CALL = RestCall(URL("https://shop.example/hooks/order"), 5.0, time.perf_counter())
TARGET = "https://shop.example/hooks/order"


@pytest.mark.parametrize(
    ("exc", "kind", "error_type", "message"),
    [
        (TimeoutError(), TransientStepError, "timeout", f"{TARGET} did not answer within 5 s"),
        (
            aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
            TransientStepError,
            "timeout",
            f"{TARGET} did not answer within 5 s",
        ),
        (
            aiohttp.ClientConnectorCertificateError(
                KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
            ),
            PermanentStepError,
            "tls",
            "TLS with shop.example failed: Cannot connect to host shop.example:443",
        ),
        (
            ssl.SSLError(1, "wrong version number"),
            PermanentStepError,
            "tls",
            "TLS with shop.example failed",
        ),
        (aiohttp.InvalidURL("http://[x"), PermanentStepError, "options", "invalid uri: http://[x"),
        (
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
            TransientStepError,
            "connection",
            f"could not reach {TARGET}: Cannot connect to host",
        ),
        (
            aiohttp.ServerDisconnectedError(),
            TransientStepError,
            "connection",
            f"could not reach {TARGET}: Server disconnected",
        ),
        (
            ConnectionResetError(),
            TransientStepError,
            "connection",
            f"could not reach {TARGET}: ConnectionResetError",
        ),
    ],
)
def test_library_errors_become_step_errors(
    exc: BaseException, kind: type[Exception], error_type: str, message: str
) -> None:
    error = rest_error(exc, CALL)
    assert type(error) is kind
    assert error.error_type == error_type
    assert str(error).startswith(message)


def test_a_refusal_wrapped_by_aiohttp_is_reported_as_the_refusal() -> None:
    refused = OutboundRefused("shop.example", "10.0.0.7", "private")
    try:
        raise aiohttp.ClientConnectionError("cannot connect") from refused
    except aiohttp.ClientConnectionError as wrapped:
        assert rest_error(wrapped, CALL) is refused


def test_an_error_no_table_row_names_is_left_alone() -> None:
    assert rest_error(KeyError("bug"), CALL) is None
