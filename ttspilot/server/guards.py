"""Request guards in front of every route: API key, body size, WebSocket connection count, CORS.

They are plain ASGI middleware so they cover HTTP and WebSocket alike and refuse
before a body is read or a socket accepted.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttspilot.config import ServerSettings
from ttspilot.server.errors import HTTP_ERROR_TYPES, error_json
from ttspilot.server.routes.web import ASSET_PREFIX, PAGE_PATHS

# /health for load balancers; the web page's static files, which hold no data (the page then asks for the key).
OPEN_PATHS = frozenset({"/health", *PAGE_PATHS})


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(ASSET_PREFIX)


async def _send_json(send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + list(headers)})
    await send({"type": "http.response.body", "body": payload})


def key_from(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer ...` or `X-API-Key` (names lower-case, as HTTP/2 and gRPC metadata send them)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")


def presented_key(scope: Scope) -> str | None:
    """The key an HTTP or WebSocket request presents."""
    return key_from({name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])})


def key_matches(presented: str | None, api_key: str) -> bool:
    """Compared in constant time, so the answer's timing does not reveal how much of a guess was right."""
    return hmac.compare_digest((presented or "").encode(), api_key.encode())


class ApiKeyGuard:
    """401 without a valid key, compared in constant time; /health and the web page's files stay open."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_open(scope["path"]):
            return await self.app(scope, receive, send)
        if key_matches(presented_key(scope), self.api_key):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008, "reason": "API key required"})
        body = error_json("missing or invalid API key", "unauthorized")
        await _send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(HTTPException):
    """Raised from inside `receive`, so FastAPI's body parsing passes it through as a 413."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body is larger than {max_bytes} bytes")


class BodyLimit:
    """413 for a body over the limit, whether it says its length or streams it chunked."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes"
        await _send_json(send, 413, error_json(message, HTTP_ERROR_TYPES[413]))


class WebSocketLimit:
    """Refuse a WebSocket past the limit instead of queueing it: accepted, then closed with 1013 and a reason.

    Closing before the handshake would answer HTTP 403 with no body, the same as a missing API key;
    after it the client reads "try again later" (1013) and why.
    """

    def __init__(self, app: ASGIApp, max_connections: int):
        self.app = app
        self.max_connections = max_connections
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        if self.open >= self.max_connections:
            reason = f"too many WebSocket connections (limit {self.max_connections}); retry later"
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            return await send({"type": "websocket.close", "code": 1013, "reason": reason})
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1


def install_guards(app: FastAPI, settings: ServerSettings) -> None:
    """Order matters: the last added runs first, so the key is checked before anything is read."""
    app.add_middleware(WebSocketLimit, max_connections=settings.max_ws_connections)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"])
    if settings.api_key:
        app.add_middleware(ApiKeyGuard, api_key=settings.api_key)
