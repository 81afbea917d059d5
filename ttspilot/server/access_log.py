"""One access-log line per HTTP request, without what the user asked to speak.

Uvicorn's access log prints the whole request line, query string included, so a GET to
/inference_sft would log its text. This one logs the path alone, the status, the time,
the request id and the length of the text, which is what an operator needs to follow a call.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttspilot.server.stats import StatsRecorder

log = logging.getLogger("ttspilot.access")


class AccessLog:
    """Plain ASGI middleware: logs when the response (streamed or not) has ended."""

    def __init__(self, app: ASGIApp, stats: StatsRecorder):
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500
        request_id = ""

        async def remember(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = dict(message.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            if log.isEnabledFor(logging.INFO):
                self._log(scope, status, request_id, time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, request_id: str, seconds: float) -> None:
        timing = self.stats.find(request_id) if request_id else None
        text = f" text={timing.characters} chars" if timing else ""
        log.info("%s %s %d %.3f s id=%s%s", scope["method"], scope["path"], status, seconds, request_id or "-", text)
