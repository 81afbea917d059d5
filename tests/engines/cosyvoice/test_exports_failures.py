"""Exports that must fail leave no cache entry and say why in one line (generic builders, CosyVoice environment)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice]

RUNNER = Path(__file__).with_name("run_export_failures.py")


def test_an_onnx_graph_that_differs_from_torch_and_an_unscriptable_module_are_never_cached(
        cosyvoice_python: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    result = subprocess.run([str(cosyvoice_python), str(RUNNER), str(cache_dir)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # traced at 256 frames, the length branch is frozen: at 16 frames ONNX Runtime gives x*2 where torch gives x*3
    assert seen["onnx"]["error"] == "OnnxExportError"
    assert seen["onnx"]["message"].startswith("the ONNX export of branch at length 16: ONNX Runtime differs")
    assert seen["script"]["error"] == "ScriptExportError"
    assert seen["script"]["message"].startswith("TorchScript could not script unscriptable (Unscriptable, fp32): ")
    assert "\n" not in seen["onnx"]["message"] + seen["script"]["message"]
    assert seen["entries"] == []
