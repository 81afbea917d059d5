"""benchmark_performance.py on a tiny CosyVoice2, in the CosyVoice environment, then the launcher's dry run.

The benchmark gets the checkout as --cosyvoice_root (TTSPILOT_COSYVOICE_ROOT is removed, so only the flag
can carry it to each tier's process); the launcher runs with the same python and XDG_CACHE_HOME, so it
finds the tuning profile the benchmark wrote for this machine and this model. One tree (the newest):
each tier's process imports the official code, about half a minute of the run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO
from ttspilot.config import TIERS
from ttspilot.tiers import TuningProfile

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]


@pytest.mark.parametrize("tree", trees_for(2)[-1:])
def test_benchmark_measures_cpu_skips_what_cannot_run_and_the_launcher_uses_its_profile(
    cosyvoice_python: Path, tmp_path: Path, tree: Path
):
    model_dir = write_tiny(cosyvoice_python, tree, 2, tmp_path / "v2")
    env = {key: value for key, value in os.environ.items() if key != "TTSPILOT_COSYVOICE_ROOT"}
    env |= {"PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    output_dir = tmp_path / "out"
    bench = subprocess.run(
        [str(cosyvoice_python), str(REPO / "benchmark_performance.py"), "--model_dir", str(model_dir),
         "--cosyvoice_root", str(tree), "--test_all", "--quick", "--concurrency", "1", "--output_dir", str(output_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert bench.returncode == 0, bench.stdout + bench.stderr[-4000:]
    results = json.loads((output_dir / "results.json").read_text())
    rows = {row["configuration"]: row for row in results["rows"]}
    cpu = rows["cpu"]
    assert cpu["status"] == "ran" and cpu["quality"] == "reference", cpu
    assert math.isfinite(cpu["rtf_median"]) and cpu["rtf_median"] > 0
    assert math.isfinite(cpu["first_audio_s"]) and cpu["first_audio_s"] > 0 and cpu["streaming"] is True
    with open(output_dir / "results.csv", newline="") as table:
        csv_cpu = next(row for row in csv.DictReader(table) if row["configuration"] == "cpu")
    assert float(csv_cpu["rtf_median"]) == pytest.approx(cpu["rtf_median"])
    assert float(csv_cpu["first_audio_s"]) == pytest.approx(cpu["first_audio_s"])
    assert results["sampled_synthesis"] is True and "synthesis is sampled" in bench.stdout
    assert results["options"]["cosyvoice_root"] == str(tree)
    for row in results["rows"]:  # measured, or skipped with the reason
        assert row["status"] in ("ran", "skipped"), row
        assert row["status"] == "ran" or row["note"], row
    if results["hardware"][0].startswith("no GPU"):
        gpu_rows = [row for row in results["rows"] if row["tier"] in TIERS and TIERS[row["tier"]].device == "cuda"]
        assert gpu_rows and all(row["status"] == "skipped" and "no usable GPU" in row["note"] for row in gpu_rows)

    path = results["tuning_profile"]["path"]
    assert path and path.startswith(env["XDG_CACHE_HOME"]), results["tuning_profile"]
    profile = TuningProfile.load(path)
    assert profile.fingerprint == results["fingerprint"] and profile.measured["cpu"] == pytest.approx(cpu["rtf_median"])
    launched = subprocess.run(
        [str(cosyvoice_python), str(REPO / "start_optimized_server.py"), "--model_dir", str(model_dir),
         "--cosyvoice_root", str(tree), "--dry_run"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert launched.returncode == 0, launched.stderr
    assert f"tuning: tuning profile applied: {profile.best_tier}: measured best on this machine" in launched.stdout
    assert f"tuning: using measured results from {path}" in launched.stderr
