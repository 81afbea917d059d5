"""A tiny CosyVoice2 whose vocoder writes NaN or silence loads and answers, and never goes live.

The maker's `--fault` breaks only the weights (upstream's code runs unchanged), as a broken FP16
path would: the server stays up but /health keeps 503 with the canary's reason, and the
fallback launcher drops the tier with that reason in its log. One server and one launcher, on the newest tree.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO, free_port
from ttspilot.server.readiness import wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]


@pytest.mark.parametrize("tree", trees_for(2)[-1:])  # the newest tree: the fault is in the weights, not the code
def test_server_on_nan_audio_never_becomes_ready(cosyvoice_python: Path, tmp_path: Path, tree: Path) -> None:
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2-nan", "--fault", "nan")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "wb") as log_file:
        server = subprocess.Popen([str(cosyvoice_python), str(REPO / "fastapi_server.py"), "--model_dir",
                                   str(model_dir), "--cosyvoice_root", str(tree), "--port", str(port)],
                                  cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        reason = wait_until_ready(url, 240, lambda: None if server.poll() is None else f"exited {server.returncode}")
        log = (tmp_path / "server.log").read_text(errors="replace")
        assert reason is not None and reason.startswith("canary failed: "), f"{reason}\n{log[-3000:]}"
        assert reason.endswith("samples are NaN or infinite"), reason
        health = httpx.get(url + "/health", timeout=10)
        assert health.status_code == 503 and health.json()["reason"] == reason  # final: it stays not ready
        assert server.poll() is None  # up and answering, only not live
        assert "canary FAILED" in log
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("tree", trees_for(2)[-1:])  # the newest tree: the fault is in the weights, not the code
def test_fallback_launcher_drops_a_tier_whose_audio_is_silent(cosyvoice_python: Path, cosyvoice_launch,
                                                              tmp_path: Path, tree: Path) -> None:
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2-silent", "--fault", "silent")
    launcher = cosyvoice_launch("start_fallback_server.py", "--model_dir", str(model_dir), "--force_config", "cpu",
                                env={"TTSPILOT_COSYVOICE_ROOT": str(tree)})
    assert launcher.wait_exit(240) == 1, launcher.log()
    assert "tier cpu failed: canary failed: silent output: RMS 0.00000 below 0.005; no tier left" in launcher.log()
    assert "ready in" not in launcher.log()
