"""One server child process: start it, wait for readiness and the canary, relay its log.

The child's output is relayed line by line to the operator, and its last error line is
kept so a failed tier can be explained in one line. The child gets a random launch token
in its environment and /health confirms it, so an answer on the port from any other
server is never mistaken for this child's. The child also learns the launcher's pid and,
on Linux, ends when the launcher does (see ttspilot/server/lifetime.py), so no way the
launcher ends leaves a server behind.
"""

from __future__ import annotations

import io
import os
import secrets
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import soundfile

from ttspilot.canary import CANARY_TEXT, Fault, judge_audio
from ttspilot.config import API_KEY_ENV, LAUNCH_TOKEN_ENV, LAUNCH_TOKEN_HEADER, LAUNCHER_PID_ENV
from ttspilot.launcher.port import in_use
from ttspilot.server.readiness import wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO_ROOT / "fastapi_server.py"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Failure:
    """Why a server child did not come up, in one line, and what the canary found when its audio was the cause."""

    reason: str
    canary_fault: Fault | None = None  # from the canary itself, so nobody has to parse `reason`


@dataclass
class ServerChild:
    """A running fastapi_server.py with the arguments it was started with."""

    command: list[str]
    url: str
    api_key: str | None = None  # the server's key, for the launcher's own health checks and canary
    env: dict[str, str] = field(default_factory=dict)  # added to the child's environment (a benchmark's thread count)
    launch_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen = field(init=False)
    last_error: str = field(default="", init=False)
    health: dict = field(default_factory=dict, init=False)  # the child's last /health answer
    _relay: threading.Thread = field(init=False)

    @classmethod
    def on_free_port(cls, server_args: list[str], env: dict[str, str] | None = None) -> ServerChild:
        """fastapi_server.py on a free loopback port, for benchmarks and soaks that run their own server."""
        port = free_loopback_port()
        command = [sys.executable, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", str(port), *server_args]
        return cls(command, f"http://127.0.0.1:{port}", env=env or {})

    def start(self) -> None:
        env = {**os.environ, **self.env, LAUNCH_TOKEN_ENV: self.launch_token, LAUNCHER_PID_ENV: str(os.getpid())}
        if self.api_key:
            env[API_KEY_ENV] = self.api_key  # the environment, not argv: `ps` shows argv to every user
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
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

    def wait_ready(self, timeout: float) -> Failure | None:
        """None when /health says ready in time; otherwise why not (exit, canary, timeout).

        Raises PortUnavailable when a server that is not this child answers on its port.
        """
        reason = wait_until_ready(
            self.url, timeout, exited=lambda: self.exit_reason() if self.process.poll() is not None else None,
            headers={LAUNCH_TOKEN_HEADER: self.launch_token}, answered=self._answered,
        )
        return None if reason is None else Failure(reason, self.health.get("canary_fault"))

    def health_problem(self, timeout: float) -> str | None:
        """None while /health answers 200; otherwise its reason, or why it did not answer."""
        try:
            response = httpx.get(self.url + "/health", headers={LAUNCH_TOKEN_HEADER: self.launch_token},
                                 timeout=timeout)
        except httpx.HTTPError as error:
            return f"/health did not answer: {type(error).__name__}: {error}"
        if response.status_code == 200:
            return None
        return f"/health answered {response.status_code}: {_json_object(response).get('reason', response.text[:200])}"

    def _answered(self, response: httpx.Response) -> None:
        """Keep the child's /health answer; an answer from any other server is a port conflict."""
        body = _json_object(response)
        if body.get("launch_token") != "match":
            why = "answers for another server than the one this launcher started"
            raise in_use(response.url.host, response.url.port, why)
        self.health = body

    def canary(self) -> Failure | None:
        """Ask the live server for the canary sentence and judge the audio it sends back."""
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        try:
            response = httpx.get(self.url + "/inference_sft", params={"tts_text": CANARY_TEXT}, headers=headers,
                                 timeout=60)
        except httpx.HTTPError as error:
            return Failure(f"canary request failed: {error}")
        if response.status_code != 200:
            return Failure(f"canary request answered {response.status_code}: {response.text[:200]}")
        try:
            audio, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
        except soundfile.SoundFileError as error:
            kind = response.headers.get("content-type", "no content-type")
            why = getattr(error, "error_string", error)
            return Failure(f"canary answer is not audio ({kind}, {len(response.content)} bytes): {why}")
        result = judge_audio(audio, rate)
        return None if result.passed else Failure(f"canary failed: {result.reason}", result.fault)

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


def _json_object(response: httpx.Response) -> dict:
    """The response's JSON object, or {} when the body is anything else."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
