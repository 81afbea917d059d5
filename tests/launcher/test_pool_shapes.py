"""start_optimized_server.py runs a tier in the measured pool shape its --objective picks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support import REPO
from ttspilot.bench.profile import model_hash
from ttspilot.config import TIERS
from ttspilot.engines import engine_support
from ttspilot.hardware import HardwareProfile, probe, simulated_gpu, with_simulated_gpus
from ttspilot.launcher.optimized import tuning_path, with_pool_shapes
from ttspilot.pool_shape import PoolShape, ShapeMeasurement, candidate_shapes
from ttspilot.tiers import TuningProfile, plan, tuning_fingerprint

PIPER = engine_support(None)


def figures(shape: PoolShape, p50: float, throughput: float) -> ShapeMeasurement:
    return ShapeMeasurement(shape, p50, p50 * 2, throughput, p50 / 2, 16)


def shaped_profile(fingerprint: str, shapes: list[ShapeMeasurement], tier: str = "cpu") -> TuningProfile:
    return TuningProfile(fingerprint, tier, {tier: 0.3}, "2026-12-01T10:00:00+00:00", shapes={tier: tuple(shapes)})


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core has one CPU pool shape")
@pytest.mark.parametrize(("objective", "pick"), [("latency", 0), ("throughput", 1), ("balanced", 0)])
def test_dry_run_shows_the_shape_each_objective_picks(tmp_path, objective, pick):
    """Measured: 1 x all cores answers first, 2 x half serves more but is 2x slower to first audio (past 1.5x)."""
    hardware = probe()
    single, pair = candidate_shapes(TIERS["cpu"], hardware)[:2]
    measured = [figures(single, 0.2, 10.0), figures(pair, 0.4, 14.0)]
    fingerprint = tuning_fingerprint(hardware, PIPER, model_hash(None))
    shaped_profile(fingerprint, measured).save(tuning_path(fingerprint, tmp_path / "ttspilot"))
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", "--objective", objective],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    shape = measured[pick].shape
    assert "1. cpu: measured best on this machine" in result.stdout  # the profile put cpu first (and only)
    assert re.search(rf"\$ .*fastapi_server\.py --tier cpu{' --trt_concurrent 2' * (shape.sessions == 2)} "
                     rf"--cpu_threads {shape.threads} --host", result.stdout)
    assert (f"pool shape for cpu: {shape} (objective {objective}: {measured[pick].throughput:.1f} audio s/s, "
            f"first audio p50 {measured[pick].first_audio_p50_s:.2f} s at 4 streams, ") in result.stdout
    assert "measured 2026-12-01T10:00:00+00:00)" in result.stdout


def test_without_shapes_the_first_tier_keeps_its_default_and_says_why():
    hardware = HardwareProfile(cpu_cores=2)
    shaped, lines = with_pool_shapes(plan(hardware, PIPER), None, "balanced", hardware)
    assert shaped.candidates[0].shape is None
    assert shaped.candidates[0].config.cli_args() == ["--tier", "cpu"]
    assert lines == ["pool shape for cpu: the tier's default 1 x 2 (no measured shapes; run benchmark_performance.py)"]


def test_measured_shapes_that_no_longer_fit_are_not_used():
    """Free GPU memory is not in the fingerprint: a shape measured with more of it free may not fit today."""
    measured_on = with_simulated_gpus(HardwareProfile(cpu_cores=16), [simulated_gpu("L4:22:8.9")])
    today = with_simulated_gpus(HardwareProfile(cpu_cores=16), [simulated_gpu("L4:3:8.9")])
    four = figures(PoolShape(4), 0.1, 30.0)  # 4 sessions x 2 GB fitted in 22 GB free, not in 3 GB
    tuning = shaped_profile(tuning_fingerprint(measured_on, PIPER), [figures(PoolShape(1), 0.1, 10.0), four], "basic")
    tier_plan = plan(today, PIPER, tuning)
    assert tier_plan.candidates[0].tier == "basic"
    shaped, lines = with_pool_shapes(tier_plan, tuning, "throughput", today)
    assert shaped.candidates[0].shape == PoolShape(1)
    assert lines[0].startswith("pool shape for basic: 1 session (objective throughput: 10.0 audio s/s")
    nothing_fits = shaped_profile(tuning.fingerprint, [four], "basic")
    shaped, lines = with_pool_shapes(tier_plan, nothing_fits, "throughput", today)
    assert shaped.candidates[0].shape is None
    assert lines == ["pool shape for basic: the tier's default 1 session (no measured shape fits here now)"]
