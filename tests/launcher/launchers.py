"""A launcher script run as a real process, its log polled from a file, its server children found with psutil."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support import REPO, assert_speech, decode_wav, free_port
from ttspilot.engines import engine_support
from ttspilot.hardware import HardwareProfile, probe
from ttspilot.tiers import TierPlan, plan


class Launcher:
    """A launcher process whose combined output goes to a file we can poll."""

    def __init__(self, script: str, args: list[str], log_path: Path, port: int | None = None,
                 env: dict[str, str] | None = None, python: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.servers_seen: dict[int, psutil.Process] = {}  # psutil.Process knows when its pid is reused
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [str(python or sys.executable), str(REPO / script), "--port", str(self.port), *args],
                cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 120, count: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} x{count} not in log:\n{self.log()}")

    def wait_exit(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)

    def server_pids(self) -> list[int]:
        """The launcher's live server children (remembered in `servers_seen`)."""
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        self.servers_seen.update((child.pid, child) for child in children)
        return [child.pid for child in children]

    def wait_for_new_server(self, known: set[int], timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if new := [pid for pid in self.server_pids() if pid not in known]:
                return new[0]
            time.sleep(0.02)
        raise AssertionError(f"no new server child within {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def end(self) -> None:
        """Kill the launcher and every server it started: ending them is the launcher's job, under test; never leak."""
        self.server_pids()
        self.kill()
        for server in self.servers_seen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()


def gone(pid: int, timeout: float) -> bool:
    """Whether `pid` has ended within `timeout` (a zombie no one has reaped yet counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def speaks(url: str, headers: dict[str, str] | None = None) -> None:
    response = httpx.get(url + "/inference_sft", params={"tts_text": "The launcher picked a tier."},
                         headers=headers, timeout=60)
    assert response.status_code == 200
    audio, rate = decode_wav(response.content)
    assert_speech(audio, rate, "The launcher picked a tier.")


def planned_here() -> tuple[HardwareProfile, TierPlan]:
    """This machine's real probe and the launchers' plan for it: tests expect what this machine allows, GPU or not."""
    profile = probe()
    return profile, plan(profile, engine_support(None))
