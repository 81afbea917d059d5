"""precompile_trt.py and the optimized launcher on a tiny CosyVoice2 whose shipped FP16 JIT file is corrupt.

`--list` shows every file each tier opens with its state; `--all` exports what this machine can
(JIT zips and the estimator ONNX on the CPU) and keeps the shipped file; the launcher, planning for
a simulated RTX 4090, drops every tier that opens the corrupt file with the reason and serves on the
next one (`jit`, FP32). On a machine with CUDA and TensorRT the plan row is built instead of
skipped; everything asserted here holds there too. One tree (the newest): the files are ours.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO, decode_wav

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

FP16_ZIP, FP32_ZIP = "flow.encoder.fp16.zip", "flow.encoder.fp32.zip"
ONNX, PLAN = "flow.decoder.estimator.fp32.onnx", "flow.decoder.estimator.fp16.mygpu.plan"


def precompile(python: Path, model_dir: Path, tree: Path, *args: str) -> tuple[int, dict[str, list[str]]]:
    """Exit code and the table's rows by file name: [kind, tiers, state, detail]."""
    done = subprocess.run([str(python), str(REPO / "precompile_trt.py"), "--model_dir", str(model_dir),
                           "--cosyvoice_root", str(tree), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    rows = {}
    for line in done.stdout.splitlines():
        match = re.match(r"^(\S+\.(?:zip|onnx|plan))\s+(\S+)\s+(.*?)\s{2,}(\S+)\s+(.*)$", line)
        if match:
            rows[match.group(1)] = [match.group(2), match.group(3), match.group(4), match.group(5)]
    assert rows, done.stdout + done.stderr
    return done.returncode, rows


@pytest.mark.parametrize("tree", trees_for(2)[-1:])
def test_precompile_and_a_corrupt_jit_file_falls_back(cosyvoice_python: Path, cosyvoice_launch, tmp_path: Path,
                                                      tree: Path) -> None:
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2")
    code, rows = precompile(cosyvoice_python, model_dir, tree, "--list")
    assert code == 0
    assert set(rows) == {FP16_ZIP, ONNX, PLAN, FP32_ZIP}
    assert rows[FP16_ZIP][:3] == ["torchscript", "full, trt_fp16, jit_fp16", "missing"]
    assert rows[PLAN][:2] == ["trt-plan", "full, trt_fp16"] and rows[FP32_ZIP][1] == "jit"

    (model_dir / FP16_ZIP).write_bytes(b"PK\x03\x04 cut short by a broken download")  # shipped, and corrupt
    code, rows = precompile(cosyvoice_python, model_dir, tree, "--all")
    assert code == 0, rows
    assert rows[FP32_ZIP][2] == "placed" and rows[ONNX][2] == "placed"
    assert rows[FP16_ZIP][2] == "shipped"  # never overwritten: it is the model's
    assert rows[PLAN][2] in ("skipped", "placed"), rows[PLAN]  # skipped: no CUDA GPU or no TensorRT here
    code, rows = precompile(cosyvoice_python, model_dir, tree, "--list")
    assert [rows[name][2] for name in (FP32_ZIP, ONNX, FP16_ZIP)] == ["valid", "valid", "shipped"]

    launcher = cosyvoice_launch("start_optimized_server.py", "--model_dir", str(model_dir), "--cosyvoice_root",
                                str(tree), "--simulate_gpu", "RTX 4090:24:8.9", "--no_precompile")
    launcher.wait_for(r"tier jit: ready in", timeout=400)
    log = launcher.log()
    for tier in ("full", "trt_fp16", "jit_fp16"):
        assert re.search(rf"tier {tier} failed: exited with code 3: engine failed to load: {re.escape(FP16_ZIP)} "
                         rf"in {re.escape(str(model_dir))} does not load", log), log[-4000:]
    response = httpx.get(launcher.url + "/inference_sft", params={"tts_text": "Served on the next tier."}, timeout=60)
    assert response.status_code == 200, response.text
    audio, rate = decode_wav(response.content)
    assert rate == 24000 and audio.size > 0
    assert launcher.stop() == 0
