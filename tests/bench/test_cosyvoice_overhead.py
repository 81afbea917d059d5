"""The server-overhead tool on a tiny CosyVoice2 folder: both sides measured end to end, in the CosyVoice env.

Checks the report's shape and sanity only; the 1.10 / 1.2 goals are for a quiet machine
(OPTIMIZATION.md, section 7), not for a shared CI host.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from tests.engines.cosyvoice.tiny_models import write_tiny
from tests.support import REPO
from ttspilot.engines.cosyvoice.upstream import find_trees, model_versions

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

ROUNDS = 2
TEXT = "The lighthouse keeper climbed the stairs."


def newest_v2_tree() -> Path:
    trees = [tree for tree in find_trees() if 2 in model_versions(tree)]
    if not trees:
        pytest.skip("no CosyVoice tree with CosyVoice2: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES "
                    "unset")
    return trees[-1]


def run(python: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_overhead_tool_measures_upstream_and_server_side_by_side(cosyvoice_python: Path, tmp_path: Path) -> None:
    tree = newest_v2_tree()
    model_dir = tmp_path / "tiny-v2"
    write_tiny(cosyvoice_python, tree, 2, model_dir)
    report_path = tmp_path / "overhead.json"
    printed = run(cosyvoice_python, "-m", "ttspilot.bench.server_overhead", "--model_dir", str(model_dir),
                  "--cosyvoice_root", str(tree), "--repeats", str(ROUNDS), "--warmup", "1", "--text", TEXT,
                  "--json", str(report_path), timeout=600).stdout
    report = json.loads(report_path.read_text())

    assert "| whole response RTF" in printed and "| streamed first audio (s)" in printed
    assert report["model_class"] == "CosyVoice2" and report["text"] == TEXT and report["rounds"] == ROUNDS
    assert report["threads"] >= 1 and report["speaker"] == "tiny"
    assert report["model_calls"]["direct"] >= 1 and report["model_calls"]["server"] >= 1
    for side in ("direct", "direct_main_thread", "server"):
        for measure in ("whole_rtf", "first_audio_s"):
            spread = report["sides"][side][measure]
            assert len(spread["values"]) == ROUNDS, (side, measure, spread)
            assert all(math.isfinite(value) and value > 0 for value in spread["values"]), (side, measure, spread)
            assert spread["q1"] <= spread["median"] <= spread["q3"], (side, measure, spread)
    for name, ratio in report["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, (name, ratio)
