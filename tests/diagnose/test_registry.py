"""The registry: unique named checks, crash containment, and the tier recommendation after failed checks."""

from __future__ import annotations

import pytest

from tests.diagnose.fakes import cpu_profile, gpu_profile
from tests.fakes_nvml import FakeNvml, NVMLError_LibraryNotFound
from ttspilot.diagnose.registry import CHECK_NAMES, CHECKS, Check, Context, recommend, run_check, run_checks
from ttspilot.diagnose.report import exit_code
from ttspilot.diagnose.result import CheckResult, Status, failed, passed


def test_check_names_are_unique_and_cover_every_area():
    assert len(set(CHECK_NAMES)) == len(CHECK_NAMES)
    assert {check.area for check in CHECKS} == {"system", "gpu", "onnxruntime", "tensorrt", "packages", "model",
                                               "network"}
    assert CHECK_NAMES.index("ort_tensorrt") < CHECK_NAMES.index("tensorrt")  # see the registry docstring
    assert CHECK_NAMES.index("gpu_preload") < CHECK_NAMES.index("ort_cuda")  # the provider checks see the preload


def test_a_crashing_check_is_reported_and_makes_the_run_exit_2():
    def boom(ctx):
        raise RuntimeError("bug")

    result = run_check(Check("boom", "system", "crashes", boom), Context())
    assert result.status is Status.FAIL and "crashed: RuntimeError: bug" in result.detail
    assert result.data["crashed"] and "RuntimeError" in result.data["traceback"]
    assert exit_code([result]) == 2


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(Context(), ["nope"])


def test_selected_checks_run_alone_with_an_injected_nvml():
    nvml = FakeNvml(init_error=NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    results = run_checks(Context(nvml=nvml), ["nvidia", "python"])
    assert [r.name for r in results] == ["python", "nvidia"]  # report order, not argument order
    assert results[1].status is Status.SKIP and results[1].area == "gpu"


def result(name, status):
    finding = passed("ok") if status is Status.PASS else failed("broken", "fix it")
    return CheckResult.of(name, finding)


def test_recommendation_follows_the_tier_plan():
    assert recommend(Context(profile=cpu_profile()), []).tier == "cpu"
    assert recommend(Context(profile=gpu_profile()), []).tier == "full"


def test_a_failed_cuda_provider_moves_piper_to_cpu():
    rec = recommend(Context(profile=gpu_profile()), [result("ort_cuda", Status.FAIL)])
    assert rec.tier == "cpu" and "full (check ort_cuda failed)" in rec.passed_over
    assert "passed over" in rec.reason


def test_a_failed_tensorrt_provider_moves_piper_to_the_best_jit_tier():
    rec = recommend(Context(profile=gpu_profile()), [result("ort_tensorrt", Status.FAIL),
                                                     result("ort_cuda", Status.PASS)])
    assert rec.tier == "jit_fp16"
    assert rec.passed_over == ("full (check ort_tensorrt failed)", "trt_fp16 (check ort_tensorrt failed)")


def test_a_cosyvoice_folder_is_planned_for_torch_and_blocked_by_the_tensorrt_package(tmp_path):
    (tmp_path / "cosyvoice2.yaml").write_text("model: cosyvoice2\n")
    ctx = Context(tmp_path, profile=gpu_profile(torch_cuda="12.1", tensorrt="10.3.0"))
    assert (ctx.engine, ctx.support.runtime) == ("cosyvoice", "torch")
    rec = recommend(ctx, [result("tensorrt", Status.FAIL), result("ort_tensorrt", Status.PASS)])
    assert rec.tier == "jit_fp16" and "full (check tensorrt failed)" in rec.passed_over
