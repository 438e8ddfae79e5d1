"""Request limits: a pure ASGI middleware that refuses bodies over the configured size."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabflow.api.errors import PayloadTooLarge, fabflow_error_response


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for a body over ``max_bytes``: at once from ``Content-Length``, else while reading
    (a chunked upload stops being read at the limit, never buffered whole)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, uploads: tuple[str, ...] = (), upload_bytes: int = 0
    ) -> None:
        """``uploads``: paths whose POST and PUT may carry up to ``upload_bytes`` (a product's
        files) instead of ``max_bytes``."""
        self.app = app
        self.max_bytes = max_bytes
        self.uploads, self.upload_bytes = uploads, upload_bytes

    def limit(self, scope: Scope) -> int:
        if scope.get("method") in ("POST", "PUT") and any(
            scope["path"] == path or scope["path"].startswith(path + "/") for path in self.uploads
        ):
            return max(self.max_bytes, self.upload_bytes)
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit(scope):
            await self._refuse(scope, receive, send)
            return
        await _Guarded(self, scope, receive, send).run()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit(scope)
        error = PayloadTooLarge(f"the request body is larger than {limit} bytes")
        await fabflow_error_response(error)(scope, receive, send)


class _Guarded:
    """One request whose body is counted while the app reads it. Once over the limit, whatever
    the app answers (frameworks turn a failed read into their own 400) is replaced by the 413."""

    def __init__(self, limit: BodyLimit, scope: Scope, receive: Receive, send: Send) -> None:
        self.limit, self.scope, self._receive, self._send = limit, scope, receive, send
        self.seen = 0
        self.max_bytes = limit.limit(scope)
        self.over = False
        self.answered = False
        self.started = False

    async def run(self) -> None:
        try:
            await self.limit.app(self.scope, self.receive, self.send)
        except _TooLarge:
            await self._answer()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.max_bytes:
                self.over = True
                raise _TooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.over:
            await self._answer()
            return
        self.started = True
        await self._send(message)

    async def _answer(self) -> None:
        if not self.answered and not self.started:
            self.answered = True
            await self.limit._refuse(self.scope, self._receive, self._send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
