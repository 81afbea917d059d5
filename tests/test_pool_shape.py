"""Pool shapes: which ones fit a machine, and which one each objective picks from measured figures."""

from __future__ import annotations

import pytest

from ttspilot.config import TIERS
from ttspilot.hardware import HardwareProfile, simulated_gpu, with_simulated_gpus
from ttspilot.pool_shape import PoolShape, ShapeMeasurement, candidate_shapes, choose, default_shape


def cpu_machine(cores: int) -> HardwareProfile:
    return HardwareProfile(cpu_cores=cores)


def gpu_machine(spec: str) -> HardwareProfile:
    return with_simulated_gpus(cpu_machine(16), [simulated_gpu(spec)])


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(1, [(1, 1), (2, 1)]), (2, [(1, 2), (2, 1), (3, 1)]), (3, [(1, 3), (2, 1), (4, 1)]),
     (16, [(1, 16), (2, 8), (4, 4), (8, 2), (17, 1)])],
)
def test_cpu_shapes_use_every_core_once_then_one_session_more(cores, expected):
    shapes = candidate_shapes(TIERS["cpu"], cpu_machine(cores))
    assert [(shape.sessions, shape.threads) for shape in shapes] == expected
    assert default_shape(TIERS["cpu"], cores) == shapes[0]  # the tier's own shape is measured too


@pytest.mark.parametrize(
    ("tier", "spec", "expected"),
    [
        ("basic", "H200:139:9.0", [1, 2, 4]),
        ("basic", "T4:5:7.5", [1, 2]),  # 4 sessions x 2 GB do not fit in 5 GB
        ("basic", "GTX 1050:1.5:6.1", [1]),  # one session always: the tier policy already let the tier run
        ("full", "RTX 4060:3:8.9", [1, 2]),  # full's own 2 sessions are kept whatever the budget says
    ],
)
def test_gpu_shapes_fit_the_free_memory_of_the_best_gpu(tier, spec, expected):
    shapes = candidate_shapes(TIERS[tier], gpu_machine(spec))
    assert [shape.sessions for shape in shapes] == expected
    assert all(shape.threads is None for shape in shapes)


def test_gpu_shapes_are_planned_for_the_gpu_with_most_free_memory():
    hardware = with_simulated_gpus(cpu_machine(8), [simulated_gpu("A:3:8.9"), simulated_gpu("B:40:8.9")])
    assert [shape.sessions for shape in candidate_shapes(TIERS["basic"], hardware)] == [1, 2, 4]


def test_shape_applies_to_the_tier_and_reads_as_a_sentence():
    config = PoolShape(2, 1).applied(TIERS["cpu"])
    assert (config.tier, config.trt_concurrent, config.cpu_threads) == ("cpu", 2, 1)
    assert config.cli_args() == ["--tier", "cpu", "--trt_concurrent", "2", "--cpu_threads", "1"]
    assert (str(PoolShape(2, 1)), PoolShape(2, 1).short) == ("2 sessions x 1 thread", "2 x 1")
    assert (str(PoolShape(1, 2)), str(PoolShape(4))) == ("1 session x 2 threads", "4 sessions")


def measured(sessions: int, p50: float, throughput: float) -> ShapeMeasurement:
    return ShapeMeasurement(PoolShape(sessions, 8 // sessions), p50, p50 * 2, throughput, p50 / 2, 12)


# 1 x 8 answers first, 4 x 2 serves most; 2 x 4 is within 1.5x of the lowest p50, 4 x 2 is not
MEASURED = [measured(1, 0.20, 10.0), measured(2, 0.29, 15.0), measured(4, 0.31, 18.0)]


@pytest.mark.parametrize(("objective", "sessions"), [("latency", 1), ("throughput", 4), ("balanced", 2)])
def test_each_objective_picks_its_shape(objective, sessions):
    choice = choose(MEASURED, objective)
    assert choice.shape.sessions == sessions and choice.objective == objective
    pick = next(m for m in MEASURED if m.shape == choice.shape)
    assert f"{pick.throughput:.1f} audio s/s, first audio p50 {pick.first_audio_p50_s:.2f} s at 4 streams" in choice.reason
    assert choice.reason.startswith(f"{pick.throughput:.1f} audio s/s")


def test_balanced_takes_a_shape_exactly_at_the_limit_and_explains_the_rule():
    at_limit = [measured(1, 0.20, 10.0), measured(4, 0.30, 18.0)]  # 0.30 = 1.5 x 0.20
    choice = choose(at_limit, "balanced")
    assert choice.shape.sessions == 4
    assert "within 1.5x of the lowest (0.20 s)" in choice.reason


def test_latency_is_one_listener_alone_even_when_four_streams_say_otherwise():
    one_fast = ShapeMeasurement(PoolShape(1, 8), 0.30, 0.4, 10.0, 0.12, 12)
    four_fast = ShapeMeasurement(PoolShape(2, 4), 0.25, 0.4, 12.0, 0.20, 12)
    choice = choose([four_fast, one_fast], "latency")
    assert choice.shape == PoolShape(1, 8) and "one listener alone (0.12 s)" in choice.reason


def test_ties_go_to_the_other_figure():
    same_p50 = [measured(1, 0.2, 10.0), measured(2, 0.2, 12.0)]
    assert choose(same_p50, "latency").shape.sessions == 2  # equal first audio: more throughput
    same_throughput = [measured(1, 0.3, 12.0), measured(2, 0.2, 12.0)]
    assert choose(same_throughput, "throughput").shape.sessions == 2  # equal throughput: sooner audio


def test_choose_needs_measurements_and_a_known_objective():
    with pytest.raises(ValueError, match="no measured shapes"):
        choose([], "balanced")
    with pytest.raises(ValueError, match="unknown objective"):
        choose(MEASURED, "cheapest")  # type: ignore[arg-type]
