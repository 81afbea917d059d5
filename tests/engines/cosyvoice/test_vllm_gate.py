"""--load_vllm on a tiny CosyVoice2 of the newest tree: refused in one line without vllm or CUDA, reported truthfully.

Where vllm and a CUDA device are both present the gate lets the load through, and the test then
holds the engine to what it reports: vLLM active, or a load error that is vLLM's own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

RUNNER = Path(__file__).with_name("run_vllm_gate.py")


@pytest.mark.parametrize("tree", trees_for(2)[-1:])  # the newest tree: the gate is ours
def test_load_vllm_is_gated_and_reported(cosyvoice_python: Path, tmp_path: Path, tree: Path) -> None:
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2")
    result = subprocess.run([str(cosyvoice_python), str(RUNNER), str(tree), str(model_dir)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["without"] == {"active": False, "reason": "not requested"}
    refused = seen["with"].get("refused")
    if not seen["vllm"]:
        assert refused.startswith("--load_vllm: vllm is not importable (ModuleNotFoundError"), refused
        assert 'pip install "vllm>=0.11" "transformers==4.57.1" (or "vllm==0.9.0" "transformers==4.51.3")' in refused
        assert "\n" not in refused
    if not seen["cuda"]:
        assert refused.startswith("--load_vllm: ") and "torch sees no CUDA device" in refused, refused
    if seen["vllm"] and seen["cuda"]:
        assert seen["with"] == {"active": True, "reason": "active"} or refused.startswith(
            "--load_vllm: vLLM could not load the LLM: "), seen["with"]
