"""Tuning profile round trip: the benchmark writes it, start_optimized_server.py --dry_run uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.bench.conftest import CpuRun
from tests.support import REPO
from ttspilot.bench.profile import save_profile
from ttspilot.bench.report import FAILED_QUALITY, Recommendation, Row
from ttspilot.engines import engine_support
from ttspilot.hardware import GB, GpuInfo, HardwareProfile, LibraryInfo
from ttspilot.tiers import TuningProfile


@pytest.mark.integration
def test_written_profile_is_used_by_the_launcher(cpu_run: CpuRun):
    path = cpu_run.results["tuning_profile"]["path"]
    assert path.startswith(cpu_run.env["XDG_CACHE_HOME"])
    profile = TuningProfile.load(path)
    assert profile.best_tier == "cpu" and profile.measured["cpu"] > 0 and profile.failed_quality == ()
    assert profile.fingerprint == cpu_run.results["fingerprint"]
    launched = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run"],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO, env=cpu_run.env,
    )
    assert launched.returncode == 0, launched.stderr
    assert "1. cpu: measured best on this machine: RTF" in launched.stdout
    assert "tuning: tuning profile applied: cpu" in launched.stdout
    assert f"tuning: using measured results from {path}" in launched.stderr


def test_profile_from_a_partial_run_is_not_written(tmp_path, monkeypatch):
    """A cpu-only run on a GPU box would push every GPU tier out of the launcher's plan."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    gpu = GpuInfo(0, "T4", 16 * GB, 16 * GB, (7, 5))
    hardware = HardwareProfile(gpus=(gpu,), libraries=LibraryInfo("1.20", ("CUDAExecutionProvider",)))
    rows = [Row("cpu", "cpu", "ran", "fast", "reference", rtf_median=0.5)]
    outcome = save_profile(rows, Recommendation("cpu", "cpu", 0.5, ""), hardware, engine_support(None), None)
    assert outcome.path is None and "would also try" in outcome.message and "--test_all" in outcome.message
    assert not (tmp_path / "ttspilot" / "tuning").exists()


def test_profile_lists_tiers_that_failed_quality(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rows = [Row("cpu", "cpu", "ran", "fast", "reference", rtf_median=0.5),
            Row("jit+fp16", "jit_fp16", "ran", FAILED_QUALITY, FAILED_QUALITY, rtf_median=0.1),
            Row("cpu+jit", "custom", "ran", FAILED_QUALITY, FAILED_QUALITY, rtf_median=0.1)]
    outcome = save_profile(rows, Recommendation("cpu", "cpu", 0.5, ""), HardwareProfile(), engine_support(None), None)
    profile = TuningProfile.load(outcome.path)
    assert profile.best_tier == "cpu" and profile.measured == {"cpu": 0.5}
    assert profile.failed_quality == ("jit_fp16",)  # custom configurations are not tiers the launcher knows
    assert outcome.path.is_relative_to(tmp_path)
