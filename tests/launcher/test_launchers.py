"""Both launchers with real child processes on loopback: fallback, failures, restarts, signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.launcher.voices import write_broken_voice, write_silent_voice
from tests.support import REPO, assert_speech, decode_wav, free_port

pytestmark = pytest.mark.integration


class Launcher:
    """A launcher process whose combined output goes to a file we can poll."""

    def __init__(self, script: str, args: list[str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / script), "--port", str(self.port), *args],
                cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
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

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def launch(tmp_path):
    started: list[Launcher] = []

    def start(script: str, *args: str) -> Launcher:
        launcher = Launcher(script, list(args), tmp_path / f"launcher{len(started)}.log")
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.kill()


def speaks(url: str) -> None:
    response = httpx.get(url + "/inference_sft", params={"tts_text": "The launcher picked a tier."}, timeout=60)
    assert response.status_code == 200
    audio, rate = decode_wav(response.content)
    assert_speech(audio, rate, "The launcher picked a tier.")


def test_optimized_comes_up_on_cpu_and_says_why(launch):
    launcher = launch("start_optimized_server.py")
    launcher.wait_for(r"tier cpu: ready in")
    log = launcher.log()
    assert "hardware: no GPU: NVML library not found" in log
    assert re.search(r"plan: full, trt_fp16, jit_fp16, jit, fp16, basic skipped, no usable GPU", log)
    assert "plan: try cpu: no usable GPU" in log
    speaks(launcher.url)
    assert launcher.stop() == 0
    assert "server stopped" in launcher.log()


def test_fallback_walks_every_gpu_tier_then_serves_on_cpu(launch):
    launcher = launch("start_fallback_server.py")
    launcher.wait_for(r"tier cpu: ready in")
    log = launcher.log()
    for tier in ("full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic"):
        assert re.search(rf"tier {tier} failed: exited with code 3: .*needs a GPU", log), tier
    speaks(launcher.url)
    assert launcher.stop() == 0


def test_candidate_that_crashes_at_load(launch, tmp_path):
    write_broken_voice(tmp_path / "model")
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--model_dir", str(tmp_path / "model"))
    assert launcher.wait_exit() == 1
    log = launcher.log()
    assert re.search(r"tier cpu failed: exited with code 3: .*broken\.onnx failed to load", log)
    assert "no tier came up" in log


def test_candidate_that_never_becomes_ready(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--ready_timeout", "0.5")
    assert launcher.wait_exit() == 1
    assert re.search(r"tier cpu failed: not ready after 0.5 s", launcher.log())


def test_candidate_whose_canary_fails(launch, tmp_path):
    write_silent_voice(tmp_path / "model")
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--model_dir", str(tmp_path / "model"))
    assert launcher.wait_exit() == 1
    assert re.search(r"tier cpu failed: canary failed: silent output", launcher.log())


def test_skip_test_starts_even_a_silent_voice(launch, tmp_path):
    write_silent_voice(tmp_path / "model")
    launcher = launch(
        "start_fallback_server.py", "--force_config", "cpu", "--skip_test", "--model_dir", str(tmp_path / "model")
    )
    launcher.wait_for(r"tier cpu: ready in")
    assert launcher.stop() == 0


def test_server_killed_after_ready_is_restarted_then_abandoned(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--max_restarts", "1")
    first_pid = int(launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)")[0])
    os.kill(first_pid, signal.SIGKILL)
    launcher.wait_for(r"tier cpu: server exited with code -9 after being ready; restarting \(1/1\)")
    pids = launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)", count=2)
    second_pid = int(pids[1])
    assert second_pid != first_pid
    speaks(launcher.url)
    os.kill(second_pid, signal.SIGKILL)
    assert launcher.wait_exit() == 1
    assert "tier cpu crashed 2 times; trying the next tier" in launcher.log()
