"""The engine's own handling of upstream quirks, in-process, on a tiny CosyVoice2 of every tree."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

RUNNER = Path(__file__).with_name("run_engine_calls.py")


@pytest.mark.parametrize("tree", trees_for(2))
def test_streams_start_alike_abandoned_streams_leave_nothing_and_flags_are_honest(
        cosyvoice_python: Path, tmp_path: Path, tree: Path) -> None:
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2")
    result = subprocess.run([str(cosyvoice_python), str(RUNNER), str(tree), str(model_dir)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Newer trees grow the shared hop length during a stream and keep it grown; the engine resets it,
    # so every stream's first chunk is as long as the first stream's.
    assert len(set(seen["first_chunk_s"] + [seen["after_abandoned_s"]])) == 1, seen
    assert all(count == 0 for count in seen["leftover_state"].values()), seen["leftover_state"]
    assert seen["llm_threads"] == []
    # fp16 was asked for: active exactly when CUDA is there, never merely because upstream kept the flag.
    fp16_active, reason = seen["flags"]["fp16"]
    assert fp16_active == seen["cuda"]
    if not seen["cuda"]:
        assert reason == "no CUDA device: upstream turns it off"
