"""Tiny random-weight CosyVoice folders load and speak through the official code of every tree.

For each upstream tree found and each version it defines, the maker's command line writes a
folder and upstream's own model class runs `inference_sft` on it, in one subprocess of the
CosyVoice environment. The
audio is noise: these check plumbing (finite samples, the model's rate, a length the biased
end-of-speech allows, a call that takes about a second).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ttspilot.engines.cosyvoice.tiny import MODELS
from ttspilot.engines.cosyvoice.upstream import find_trees, model_versions

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]
RUNNER = Path(__file__).with_name("run_sft.py")
TEXT = "Hello world, this is a short test."
# Upstream stops only after 2 speech tokens per text token; at even odds per step, 20 more is
# a one-in-a-million run. Text tokens never outnumber UTF-8 bytes (byte-level or tiktoken).
MIN_TOKENS_PER_TEXT_TOKEN = 2
EXTRA_TOKENS = 20
MAX_CALL_S = 30.0  # about a second on a quiet machine; a model run to upstream's length limit takes minutes


def cases() -> list:
    trees = find_trees()
    if not trees:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason="no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset"))]
    return [pytest.param(tree, version, id=f"{tree.name}-v{version}")
            for tree in trees for version in model_versions(tree) if version in MODELS]


def run(python: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.parametrize(("tree", "version"), cases())
def test_tiny_model_speaks_through_upstream(cosyvoice_python: Path, tmp_path: Path, tree: Path,
                                            version: int) -> None:
    model = MODELS[version]
    model_dir = tmp_path / f"tiny-v{version}"
    text = model.sft_prefix + TEXT
    spoken = run(cosyvoice_python, str(RUNNER), str(tree), str(version), str(model_dir), text, timeout=300)
    assert f"tiny CosyVoice v{version} written to {model_dir}" in spoken.stdout
    assert (model_dir / model.config).is_file() and (model_dir / "spk2info.pt").is_file()
    result = json.loads(spoken.stdout.strip().splitlines()[-1])

    assert result["model_class"] == f"CosyVoice{version if version > 1 else ''}"
    assert result["sample_rate"] == model.sample_rate
    assert result["finite"] and result["rms"] > 0
    seconds = result["shape"][1] / model.sample_rate
    max_tokens = MIN_TOKENS_PER_TEXT_TOKEN * len(text.encode()) + EXTRA_TOKENS
    assert 0 < seconds <= max_tokens / model.token_rate, result
    assert result["call_s"] < MAX_CALL_S, result
