"""One server child process: start it, wait for readiness and the canary, relay its log.

The child's output is relayed line by line to the operator, and its last error line is
kept so a failed tier can be explained in one line.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import soundfile

from ttspilot.canary import CANARY_TEXT, judge_audio

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO_ROOT / "fastapi_server.py"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerChild:
    """A running fastapi_server.py with the arguments it was started with."""

    command: list[str]
    url: str
    process: subprocess.Popen = field(init=False)
    last_error: str = field(default="", init=False)
    _relay: threading.Thread = field(init=False)

    @classmethod
    def on_free_port(cls, server_args: list[str]) -> ServerChild:
        """fastapi_server.py on a free loopback port, for benchmarks and soaks that run their own server."""
        port = free_loopback_port()
        command = [sys.executable, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", str(port), *server_args]
        return cls(command, f"http://127.0.0.1:{port}")

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self._relay = threading.Thread(target=self._relay_output, daemon=True)
        self._relay.start()

    def _relay_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            sys.stdout.write(f"  [server] {line}")
            sys.stdout.flush()
            if " ERROR " in line or "Error" in line:
                self.last_error = line.strip().split(": ", 1)[-1]

    def exit_reason(self) -> str:
        self._relay.join(timeout=5)
        return f"exited with code {self.process.returncode}" + (f": {self.last_error}" if self.last_error else "")

    def wait_ready(self, timeout: float) -> str | None:
        """None when /health says ready in time; otherwise why not (exit, canary, timeout)."""
        deadline = time.monotonic() + timeout
        last = "no answer from /health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return self.exit_reason()
            try:
                response = httpx.get(self.url + "/health", timeout=2)
                if response.status_code == 200:
                    return None
                body = response.json()
                last = body.get("reason", last)
                if last.startswith("canary"):
                    return last
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.25)
        return f"not ready after {timeout:g} s ({last})"

    def canary(self) -> str | None:
        """Ask the live server for the canary sentence and judge the audio it sends back."""
        try:
            response = httpx.get(self.url + "/inference_sft", params={"tts_text": CANARY_TEXT}, timeout=60)
        except httpx.TransportError as error:
            return f"canary request failed: {error}"
        if response.status_code != 200:
            return f"canary request answered {response.status_code}: {response.text[:200]}"
        audio, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
        result = judge_audio(audio, rate)
        return None if result.passed else f"canary failed: {result.reason}"

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, grace: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._relay.join(timeout=5)
