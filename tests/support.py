"""Test helpers: start the real server on loopback, decode and judge audio."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from ttspilot.launcher.child import free_loopback_port
from ttspilot.server.readiness import wait_until_ready

REPO = Path(__file__).resolve().parents[1]


free_port = free_loopback_port


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(args: list[str], log_path: Path, env: dict[str, str] | None = None, timeout: float = 90.0,
                 python: Path | str = sys.executable) -> RunningServer:
    """Start fastapi_server.py as a child process of `python` and wait until /health says ready."""
    port = free_port()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(python), str(REPO / "fastapi_server.py"), "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)

    def exited() -> str | None:
        return None if process.poll() is None else f"server exited with {process.returncode}"

    reason = wait_until_ready(server.url, timeout, exited)
    if reason is not None:
        process.kill()
        process.wait()
        raise RuntimeError(f"{reason}:\n{server.log()}")
    return server


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def say(config: pytest.Config, line: str) -> None:
    """Straight to the terminal, loudly: pytest would otherwise capture it and show it only on a failure."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line, yellow=True, bold=True)


def finished_record(url: str, request_id: str, timeout: float = 15.0) -> dict:
    """A request's record on /performance_info once it has ended: running requests are found too, and the server
    may end one a moment after its last byte was read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = httpx.get(f"{url}/performance_info", params={"request_id": request_id}, timeout=10).json()["request"]
        if found is not None and found["outcome"] != "running":
            return found
        time.sleep(0.05)
    raise AssertionError(f"request {request_id} never finished")


def write_noise(path: Path, seconds: float = 2.0, rate: int = 22050) -> Path:
    """A WAV of steady noise: a prompt recording the upload checks accept (the tiny models need no real speech)."""
    noise = np.random.default_rng(0).normal(0, 0.1, int(seconds * rate)).astype(np.float32)
    soundfile.write(path, noise, rate)
    return path


def decode_wav(body: bytes) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    return audio, rate


def assert_speech(audio: np.ndarray, rate: int, text: str) -> None:
    """Real speech: finite, audible, and about as long as the text takes to say."""
    assert audio.size > 0
    assert np.isfinite(audio).all()
    assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 0.01
    duration = len(audio) / rate
    assert 0.03 * len(text) <= duration <= 0.15 * len(text), f"{duration:.2f} s for {len(text)} characters"


@contextmanager
def fixed_json_server(body: dict, status: int = 200, port: int = 0) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET with the same JSON: a stand-in for servers that are not ours."""
    payload = json.dumps(body).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
