"""uvicorn's connection protocols plus the two timeouts it lacks: header reading and stalled writes.

uvicorn closes idle keep-alive connections, but not a request whose headers trickle in
(slowloris) nor a response the client stops reading: both hold a connection, and an unread
response also holds its synthesis slot, for as long as the client likes. These subclasses of
the protocols uvicorn would pick itself (h11, websockets sans-I/O) drop such connections. An
aborted transport reports a disconnect to the app, which cancels the request and frees its slot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ttspilot.server.errors import error_json

log = logging.getLogger("ttspilot.server")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class StalledWriteGuard:
    """Aborts the connection when its send buffer stays full for `write_timeout` seconds."""

    write_timeout: float
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    _stalled: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        if self._stalled is None:
            self._stalled = self.loop.call_later(self.write_timeout, self._drop_stalled)

    def resume_writing(self) -> None:
        self._cancel_stalled()
        super().resume_writing()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stalled()
        super().connection_lost(exc)  # type: ignore[misc]

    def _cancel_stalled(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def _drop_stalled(self) -> None:
        self._stalled = None
        log.warning("client %s read nothing for %g s: connection dropped, its request cancelled",
                    _peer(self.client), self.write_timeout)
        self.transport.abort()


class GuardedH11Protocol(StalledWriteGuard, H11Protocol):
    """HTTP/1.1 that also closes a connection whose request headers are not complete in `header_timeout`."""

    header_timeout: float
    _waiting_headers: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._wait_for_headers()  # a fresh request, or the next one on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._headers_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _wait_for_headers(self) -> None:
        if self._waiting_headers is None:
            self._waiting_headers = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_done(self) -> None:
        if self._waiting_headers is not None:
            self._waiting_headers.cancel()
            self._waiting_headers = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a request h11 cannot parse (too many headers, say) in plain text: use our JSON shape."""
        why = f"{msg.rstrip('.')}: malformed request line or headers, or headers over 16 KiB"
        body = error_json(why, "invalid_request")
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def _headers_too_slow(self) -> None:
        self._waiting_headers = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        log.warning("client %s sent no complete request headers in %g s: connection closed",
                    _peer(self.client), self.header_timeout)
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


class GuardedWebSocketProtocol(StalledWriteGuard, WebSocketsSansIOProtocol):
    """WebSockets whose client stops reading are dropped like HTTP ones."""


def _peer(client: tuple[str, int] | None) -> str:
    return "%s:%d" % client if client else "unknown"


def connection_protocols(*, header_timeout: float, write_timeout: float) -> dict[str, Any]:
    """The `http` and `ws` arguments for uvicorn.run, carrying these timeouts."""
    http = type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout": header_timeout, "write_timeout": write_timeout})
    ws = type("GuardedWebSocketProtocol", (GuardedWebSocketProtocol,), {"write_timeout": write_timeout})
    return {"http": http, "ws": ws}
