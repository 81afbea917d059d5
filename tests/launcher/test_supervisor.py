"""The Supervisor with real server children on loopback: vLLM dropped, the canary's verdict kept structured."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.launcher.voices import write_broken_voice, write_overdriven_voice
from tests.support import free_port
from ttspilot.launcher.child import Failure, ServerChild
from ttspilot.launcher.run import LaunchOptions, Supervisor
from ttspilot.tiers import Candidate

pytestmark = pytest.mark.integration


def test_vllm_that_fails_is_dropped_and_the_same_tier_tried_without_it(tmp_path: Path, caplog) -> None:
    """A Piper voice has no vLLM path, so its server refuses --load_vllm; the broken voice then ends the launch
    on any machine, GPU or not, without a server left to stop."""
    write_broken_voice(tmp_path / "model")
    server_args = ("--vllm_gpu_memory_utilization", "0.3", "--model_dir", str(tmp_path / "model"))
    options = LaunchOptions(port=free_port(), ready_timeout=60, server_args=server_args)
    with caplog.at_level(logging.INFO, logger="ttspilot.launcher"):
        code = Supervisor(options).run([Candidate("basic", "planned", vllm=True), Candidate("basic", "planned")])
    assert code == 1
    lines = [record.getMessage() for record in caplog.records]
    starts = [line for line in lines if " starting " in line]
    assert len(starts) == 2
    assert starts[0].startswith("tier basic + vLLM: starting ") and "--tier basic --load_vllm" in starts[0]
    assert starts[1].startswith("tier basic: starting ") and "--load_vllm" not in starts[1]
    assert "vLLM dropped: exited with code 3: engine failed to load: --load_vllm: the Piper engine has no vLLM path; " \
           "trying basic without it" in lines
    # the memory share reached the server unchanged: it got past the flags and failed loading the voice
    assert any(re.fullmatch(r"tier basic failed: exited with code 3: .*broken\.onnx.*; no tier left", line)
               for line in lines), lines


@pytest.fixture
def overdriven(tmp_path: Path) -> Iterator[list[str]]:
    write_overdriven_voice(tmp_path / "model")
    yield ["--tier", "cpu", "--model_dir", str(tmp_path / "model")]


def started(server_args: list[str]) -> ServerChild:
    child = ServerChild.on_free_port(server_args)
    child.start()
    return child


def test_clipped_audio_fails_the_servers_canary_with_its_fault(overdriven: list[str]) -> None:
    child = started(overdriven)
    try:
        failure = child.wait_ready(60)
    finally:
        child.stop()
    assert isinstance(failure, Failure) and failure.canary_fault == "clipped"
    assert failure.reason.startswith("canary failed: clipped output: 100.0% of samples at full scale")


def test_clipped_audio_fails_the_launchers_own_canary_with_its_fault(overdriven: list[str]) -> None:
    child = started([*overdriven, "--no_canary"])  # the server is ready after warm-up; the launcher still listens
    try:
        assert child.wait_ready(60) is None
        failure = child.canary()
    finally:
        child.stop()
    assert failure is not None and failure.canary_fault == "clipped"
    assert failure.reason.startswith("canary failed: clipped output: ")
