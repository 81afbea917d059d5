"""The best tier's pool shapes, measured for real (cpu tier, 1 s of load each) in the shared benchmark run."""

from __future__ import annotations

import os

import pytest

from tests.bench.conftest import CpuRun
from ttspilot.config import TIERS
from ttspilot.hardware import probe
from ttspilot.pool_shape import OBJECTIVES, candidate_shapes
from ttspilot.tiers import TuningProfile

pytestmark = pytest.mark.integration


def test_every_cpu_shape_is_measured_with_sane_figures(cpu_run: CpuRun):
    shapes = cpu_run.results["pool_shapes"]
    assert shapes["tier"] == "cpu" and shapes["streams"] == 4 and shapes["seconds"] == 1
    expected = [str(shape) for shape in candidate_shapes(TIERS["cpu"], probe())]
    assert [row["shape"] for row in shapes["rows"]] == expected
    cores = os.cpu_count() or 1
    for row, shape in zip(shapes["rows"], candidate_shapes(TIERS["cpu"], probe())):
        assert row["status"] == "ran", row
        assert row["ran_as"] == f"{shape.sessions} x {shape.threads}"  # the engine really ran the shape asked for
        assert shape.sessions * shape.threads <= cores or (shape.sessions, shape.threads) == (cores + 1, 1)
        assert 0 < row["first_audio_p50_s"] <= row["first_audio_p95_s"]
        assert row["throughput"] > 0 and row["single_first_audio_s"] > 0 and row["stall_max_s"] >= 0
        assert row["requests"] >= 4  # every stream sends at least one request, however short the load
    assert set(shapes["choices"]) == set(OBJECTIVES)
    assert {choice["shape"] for choice in shapes["choices"].values()} <= set(expected)


def test_shape_table_and_choices_are_printed(cpu_run: CpuRun):
    assert "pool shapes of cpu: 4 streamed requests of the long text at once for 1 s" in cpu_run.stdout
    assert "audio s/s @4" in cpu_run.stdout and "stall max s @4" in cpu_run.stdout
    for objective in OBJECTIVES:
        assert f"pool shape for {objective}: " in cpu_run.stdout


def test_measured_shapes_go_into_the_tuning_profile(cpu_run: CpuRun):
    profile = TuningProfile.load(cpu_run.results["tuning_profile"]["path"])
    rows = cpu_run.results["pool_shapes"]["rows"]
    assert [str(m.shape) for m in profile.shapes["cpu"]] == [row["shape"] for row in rows]
    assert [m.throughput for m in profile.shapes["cpu"]] == [row["throughput"] for row in rows]
    assert "pool shape(s) of cpu" in cpu_run.results["tuning_profile"]["message"]
