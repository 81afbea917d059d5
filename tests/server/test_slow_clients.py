"""Clients that stall over real sockets: non-readers, slow headers, long WebSocket work. None may hold the server."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from tests.support import RunningServer, start_server, stop_server

pytestmark = pytest.mark.integration

WRITE_TIMEOUT = 2.0
# Lots of audio at 48 kHz, so the kernel buffers of a client that reads nothing fill within seconds.
LONG = " ".join(f"Sentence {i} of a long reading that nobody is going to listen to." for i in range(60))
STREAM_BODY = json.dumps({"text": LONG, "sample_rate": 48000}).encode()


def address(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def tiny_socket(server: RunningServer) -> socket.socket:
    """A client socket with a small receive buffer, so an unread response backs up to the server quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address(server))
    return sock


def post_and_never_read(server: RunningServer) -> socket.socket:
    sock = tiny_socket(server)
    head = "POST /v1/tts/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(STREAM_BODY)}\r\n\r\n".encode() + STREAM_BODY)
    return sock


def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether reading what is left ends in EOF or a reset within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def wait_logged(server: RunningServer, line: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.log().count(line) < count:
        assert time.monotonic() < deadline, f"{count} x {line!r} not logged:\n{server.log()}"
        time.sleep(0.2)


def wait_admitted(server: RunningServer, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(server.url + "/performance_info", timeout=5).json()["pipeline"]["admitted"] >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count} requests never admitted")


def seconds_until_served(server: RunningServer, limit: float) -> float:
    """Retry a short request (503 while busy) until it is served; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        response = httpx.post(server.url + "/v1/tts", json={"text": "Served."}, timeout=60)
        if response.status_code == 200:
            return time.monotonic() - started
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    raise AssertionError(f"not served within {limit} s while stalled clients hold the slots")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """Four slots, a 2 s write timeout, a 2 s header timeout, WebSocket keepalive wanting a pong within 1 s."""
    server = start_server(
        ["--max_queue", "4", "--write_timeout", str(WRITE_TIMEOUT), "--request_timeout", "300",
         "--header_timeout", "2", "--ws_ping_interval", "0.5", "--ws_ping_timeout", "0.5"],
        tmp_path_factory.mktemp("guarded") / "server.log",
    )
    yield server
    stop_server(server)


def test_http_non_readers_free_their_slots_after_the_write_timeout(guarded):
    stalled = [post_and_never_read(guarded) for _ in range(4)]
    try:
        wait_admitted(guarded, 4)
        # Filling the kernel buffers takes a few seconds of synthesis; then the write timeout runs.
        assert seconds_until_served(guarded, 45) < 30
        wait_logged(guarded, "read nothing for 2 s", 4)  # every non-reader, not only the first, is dropped
        assert all(closed_by_server(sock) for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()


async def _ws_non_reader(server: RunningServer) -> websockets.ClientConnection:
    """A WebSocket client that asks for long audio and then reads nothing (nor answers pings)."""
    sock = tiny_socket(server)
    ws = await websockets.connect(server.url.replace("http", "ws") + "/ws/tts", sock=sock, max_queue=1,
                                  ping_interval=None)
    await ws.send(json.dumps({"text": LONG, "sample_rate": 48000}))
    return ws


def test_websocket_non_readers_free_their_slots_after_the_write_timeout(tmp_path):
    # Keepalive slower than the test: only the write timeout can free these slots.
    server = start_server(["--max_queue", "4", "--write_timeout", str(WRITE_TIMEOUT), "--request_timeout", "300",
                           "--ws_ping_interval", "120", "--ws_ping_timeout", "120"], tmp_path / "server.log")

    async def scenario() -> float:
        stalled = [await _ws_non_reader(server) for _ in range(4)]
        try:
            await asyncio.to_thread(wait_admitted, server, 4)
            return await asyncio.to_thread(seconds_until_served, server, 45)
        finally:
            for ws in stalled:
                ws.transport.abort()

    try:
        assert asyncio.run(scenario()) < 30
        assert "read nothing for 2 s" in server.log()
    finally:
        stop_server(server)


def test_request_timeout_covers_sending(tmp_path):
    server = start_server(["--max_queue", "1", "--write_timeout", "300", "--request_timeout", "4"],
                          tmp_path / "server.log")
    try:
        stalled = post_and_never_read(server)
        wait_admitted(server, 1)
        assert seconds_until_served(server, 30) < 10
        assert "longer than --request_timeout 4 s" in server.log()
        stalled.close()
    finally:
        stop_server(server)


def test_slow_headers_are_closed_after_the_header_timeout_while_health_answers(guarded):
    sockets = [socket.create_connection(address(guarded)) for _ in range(30)]
    for sock in sockets:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        sock.setblocking(False)
    open_ = set(range(len(sockets)))
    started = time.monotonic()
    try:
        while open_ and time.monotonic() - started < 8:
            for index in list(open_):
                try:
                    sockets[index].sendall(b"X-Slow: 1\r\n")
                    data = sockets[index].recv(1024)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    open_.discard(index)
            assert httpx.get(guarded.url + "/health", timeout=2).status_code == 200
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert not open_, f"{len(open_)} slow sockets still open after {elapsed:.1f} s"
    assert elapsed < 2 + 3


async def _replies(ws: websockets.ClientConnection, requests: int) -> list[dict]:
    """Every message up to the `requests`-th done."""
    replies: list[dict] = []
    while sum(r["type"] == "done" for r in replies) < requests:
        replies.append(json.loads(await ws.recv()))
    return replies


def test_websocket_pipelined_work_outlives_keepalive_and_binary_frames_get_an_error(guarded):
    # Server pings every 0.5 s and wants a pong within 0.5 s: work longer than that must keep the socket.
    async def scenario() -> tuple[list[dict], list[str]]:
        async with websockets.connect(guarded.url.replace("http", "ws") + "/ws/tts") as ws:
            await ws.send(b"\x00binary")
            await ws.send(json.dumps({"text": LONG[:2500]}))
            await ws.send(json.dumps({"text": "And a second request."}))
            replies = await _replies(ws, 2)
        async with websockets.connect(guarded.url.replace("http", "ws") + "/ws/tts") as other:
            await other.send(json.dumps({"text": "A third, on another socket."}))
            ids = [r["request_id"] for r in [*replies, *await _replies(other, 1)] if r["type"] == "done"]
        return replies, ids

    started = time.monotonic()
    replies, ids = asyncio.run(scenario())
    assert time.monotonic() - started > 2  # twice as long as a missed pong takes to close the socket
    assert replies[0]["type"] == "error" and "binary" in replies[0]["message"]
    audio = b"".join(base64.b64decode(r["data"]) for r in replies if r["type"] == "audio_chunk")
    assert len(audio) / 2 / replies[1]["sample_rate"] > 30
    assert len(set(ids)) == 3 and all(re.fullmatch(r"ws-[0-9a-f]{32}", i) for i in ids), ids


def test_headers_h11_cannot_parse_get_the_json_error_shape(guarded):
    """Past h11's 16 KiB header limit uvicorn itself answers; it must still be our JSON error, not plain text."""
    with socket.create_connection(address(guarded), timeout=10) as sock:
        filler = "".join(f"X-Filler-{i}: {'a' * 200}\r\n" for i in range(120))
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{filler}".encode())  # no blank line: still incomplete
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["error"]["type"] == "invalid_request" and "headers" in error["message"]
    assert httpx.get(guarded.url + "/health", timeout=5).status_code == 200
