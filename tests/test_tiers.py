"""Tier policy: the cold-start rule, what hardware, libraries and engines rule out, and tuning profiles."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ttspilot.config import FALLBACK_ORDER, GPU_TIERS
from ttspilot.engines import engine_support
from ttspilot.engines.base import EngineSupport
from ttspilot.hardware import NO_NVML_LIBRARY, HardwareProfile, LibraryInfo, simulated_gpu, with_simulated_gpus
from ttspilot.pool_shape import PoolShape, ShapeMeasurement
from ttspilot.tiers import Candidate, TuningProfile, plan, tuning_fingerprint

PIPER = engine_support(None)  # the embedded voice's engine
COSYVOICE = EngineSupport(trt=True, jit=True, fp16=True, name="cosyvoice", runtime="torch")  # a torch engine
NO_GPU = HardwareProfile(gpu_absent_reason=NO_NVML_LIBRARY, cpu_cores=8)
CUDA_ORT = ("CUDAExecutionProvider", "CPUExecutionProvider")
TRT_ORT = ("TensorrtExecutionProvider", *CUDA_ORT)


def simulated(*specs: str) -> HardwareProfile:
    return with_simulated_gpus(NO_GPU, [simulated_gpu(spec) for spec in specs])


def real(spec: str, **libraries: object) -> HardwareProfile:
    """A probed (not simulated) profile: the policy checks its libraries."""
    return replace(simulated(spec), simulated=False, libraries=LibraryInfo(**libraries))


def tiers(candidates: list[Candidate]) -> list[str]:
    return [candidate.tier for candidate in candidates]


ALL = list(FALLBACK_ORDER)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("RTX 4060:8:8.9", ALL),
        ("T4:16:7.5", ALL),
        ("GTX 1050:2:6.1", ["jit", "basic", "cpu"]),
        ("X:7.99:8.9", ALL[1:]),
        ("X:4.0:8.9", ALL[1:]),
        ("X:3.9:8.9", ALL[2:]),
        ("X:2.0:8.9", ALL[2:]),
        ("X:1.9:8.9", ALL[3:]),
        ("V100:32:7.0", ALL[2:]),  # no TensorRT below compute 7.5
        ("Jetson Nano:4:5.3", ["jit", "basic", "cpu"]),  # FP16 needs compute >= 7.0
    ],
)
def test_cold_start_order(spec: str, expected: list[str]) -> None:
    candidates = plan(simulated(spec), PIPER).candidates
    assert tiers(candidates) == expected
    assert candidates[-1].tier == "cpu"


def test_first_reason_names_memory_band_and_gpu() -> None:
    first = plan(simulated("RTX 4060:8:8.9"), PIPER).candidates[0]
    assert str(first) == "full: 8 GB free GPU memory on GPU 0 (RTX 4060, compute 8.9): >= 8 GB"
    assert plan(simulated("X:7.99:8.9"), PIPER).candidates[0].reason.endswith(
        "7.99 GB free GPU memory on GPU 0 (X, compute 8.9): 4-8 GB"
    )
    assert plan(simulated("X:1.9:8.9"), PIPER).candidates[0].reason.endswith(": < 2 GB")


def test_gtx_1050_gets_jit_for_lack_of_fp16() -> None:
    result = plan(simulated("GTX 1050:2:6.1"), PIPER)
    assert "no FP16 support: compute capability 6.1 < 7.0" in result.candidates[0].reason
    skipped = {candidate.tier: candidate.reason for candidate in result.skipped}
    assert list(skipped) == ["full", "trt_fp16", "jit_fp16", "fp16"]
    assert "TensorRT needs compute capability >= 7.5, GPU has 6.1" in skipped["full"]
    assert "needs >= 8 GB free GPU memory, 2 GB free" in skipped["full"]
    assert skipped["fp16"] == "skipped, no FP16 support: compute capability 6.1 < 7.0"


def test_skipped_tiers_say_why() -> None:
    assert [str(c) for c in plan(simulated("X:3.8:8.9"), PIPER).skipped] == [
        "full: skipped, needs >= 8 GB free GPU memory, 3.8 GB free",
        "trt_fp16: skipped, needs >= 4 GB free GPU memory, 3.8 GB free",
    ]
    assert plan(simulated("T4:16:7.5"), PIPER).skipped == ()
    assert plan(simulated("T4:16:7.5"), PIPER).vllm_skipped == "engine piper has no vLLM path for this model"


def test_no_gpu_gives_cpu_only_with_the_reason() -> None:
    result = plan(NO_GPU, PIPER)
    assert result.candidates == (Candidate("cpu", f"no usable GPU: {NO_NVML_LIBRARY}"),)
    assert tiers(list(result.skipped)) == list(GPU_TIERS)
    assert all(c.reason == f"skipped, no usable GPU: {NO_NVML_LIBRARY}" for c in result.skipped)
    assert result.gpu is None


@pytest.mark.parametrize(
    ("support", "libraries", "expected", "reason"),
    [
        (PIPER, {"ort_providers": TRT_ORT}, ALL, None),
        (
            PIPER,
            {"ort_providers": CUDA_ORT, "tensorrt_version": "10.3.0"},
            ALL[2:],
            "onnxruntime has no TensorrtExecutionProvider",
        ),
        (
            PIPER,
            {"ort_providers": ("CPUExecutionProvider",), "torch_cuda": "12.1"},
            ["cpu"],
            "no CUDAExecutionProvider",
        ),
        (COSYVOICE, {"torch_cuda": "12.1", "tensorrt_version": "10.3.0"}, ALL, None),
        (COSYVOICE, {"torch_cuda": "12.1", "ort_providers": TRT_ORT}, ALL[2:], "no tensorrt package"),
        (
            COSYVOICE,
            {"torch_version": "2.5.0+cpu", "ort_providers": TRT_ORT},
            ["cpu"],
            "torch is not installed as a CUDA build",
        ),
        (EngineSupport(True, True, True, "generic"), {"torch_cuda": "12.1", "ort_providers": TRT_ORT}, ALL, None),
        (EngineSupport(True, True, True, "generic"), {"ort_providers": CUDA_ORT}, ALL[2:], "TensorRT not installed"),
        (EngineSupport(True, True, True, "generic"), {}, ["cpu"], "neither onnxruntime's CUDAExecutionProvider"),
    ],
)
def test_real_profiles_need_the_libraries_the_engine_uses(
    support: EngineSupport, libraries: dict, expected: list[str], reason: str | None
) -> None:
    result = plan(real("T4:16:7.5", **libraries), support)
    assert tiers(list(result.candidates)) == expected
    if reason is not None:
        assert all(reason in c.reason for c in result.skipped if c.tier in ("full", "trt_fp16"))


def test_simulated_profile_assumes_libraries_present() -> None:
    bare = real("T4:16:7.5")
    assert tiers(list(plan(bare, PIPER).candidates)) == ["cpu"]
    assert tiers(list(plan(replace(bare, simulated=True), PIPER).candidates)) == ALL


@pytest.mark.parametrize(
    ("support", "expected", "reason"),
    [
        (EngineSupport(trt=False, jit=True, fp16=True, name="nort"), ALL[2:], "engine nort has no TensorRT path"),
        (
            EngineSupport(trt=True, jit=True, fp16=False, name="nohalf"),
            ["jit", "basic", "cpu"],
            "engine nohalf has no FP16 path",
        ),
        (
            EngineSupport(trt=False, jit=False, fp16=False, name="plain"),
            ["basic", "cpu"],
            "engine plain has no JIT path for this model: same as basic",
        ),
    ],
)
def test_engine_without_a_path_skips_its_tiers(support: EngineSupport, expected: list[str], reason: str) -> None:
    result = plan(simulated("T4:16:7.5"), support)
    assert tiers(list(result.candidates)) == expected
    assert any(reason in skipped.reason for skipped in result.skipped)


def cosyvoice_folder(tmp_path: Path, version: int) -> Path:
    """A folder the CosyVoice engine recognises: it goes by the config file's name, no model is needed to plan."""
    folder = tmp_path / f"cosyvoice{version}"
    folder.mkdir()
    (folder / {1: "cosyvoice.yaml", 2: "cosyvoice2.yaml", 3: "cosyvoice3.yaml"}[version]).write_text("")
    return folder


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("RTX 4090:24:8.9", ["full", "trt_fp16", "fp16", "basic", "cpu"]),
        ("GTX 1650:4:7.5", ["trt_fp16", "fp16", "basic", "cpu"]),
        ("X:3:8.9", ["fp16", "basic", "cpu"]),
    ],
)
def test_cosyvoice3_keeps_tensorrt_and_fp16_tiers_without_a_jit_path(tmp_path: Path, spec: str,
                                                                     expected: list[str]) -> None:
    support = engine_support(cosyvoice_folder(tmp_path, 3))
    assert not support.jit
    result = plan(simulated(spec), support)
    assert [c.tier for c in result.candidates if not c.vllm] == expected
    skipped = {c.tier: c.reason for c in result.skipped}
    assert skipped["jit_fp16"] == "skipped, engine cosyvoice has no JIT path for this model: same as fp16"
    assert skipped["jit"] == "skipped, engine cosyvoice has no JIT path for this model: same as basic"
    fallback = [c.reason for c in result.candidates if not c.vllm][1:-1]
    assert fallback and not any("JIT" in reason for reason in fallback)  # the engine runs them without JIT


def test_a_jit_tier_without_a_twin_stays_and_its_reason_names_the_best_tier_left(tmp_path: Path) -> None:
    result = plan(simulated("X:3:8.9"), engine_support(cosyvoice_folder(tmp_path, 3)))
    non_vllm = [c for c in result.candidates if not c.vllm]
    assert non_vllm[0].reason.endswith(
        "fits jit_fp16, but engine cosyvoice has no JIT path for this model: same as fp16; fp16 is the best tier left"
    )


@pytest.mark.parametrize("version", [1, 2])
def test_cosyvoice_with_a_jit_path_keeps_every_tier(tmp_path: Path, version: int) -> None:
    result = plan(simulated("RTX 4090:24:8.9"), engine_support(cosyvoice_folder(tmp_path, version)))
    assert [c.tier for c in result.candidates if not c.vllm] == ALL
    assert result.skipped == ()


def test_vllm_goes_first_on_top_of_the_first_gpu_tier(tmp_path: Path) -> None:
    result = plan(simulated("RTX 4090:24:8.9"), engine_support(cosyvoice_folder(tmp_path, 2)))
    first, second = result.candidates[:2]
    assert (first.tier, first.vllm, second.tier, second.vllm) == ("full", True, "full", False)
    assert str(first) == ("full + vLLM: vLLM (assumed installed for the simulated GPU) for the LLM on top of full; "
                          "dropped for full alone if it fails")
    assert second.reason.startswith("24 GB free GPU memory on GPU 0 (RTX 4090")
    assert first.config.load_vllm and not second.config.load_vllm
    assert first.config.cli_args() == ["--tier", "full", "--load_vllm"]
    assert result.vllm_skipped is None
    assert sum(c.vllm for c in result.candidates) == 1


VLLM_SUPPORT = replace(COSYVOICE, vllm=True)


@pytest.mark.parametrize(
    ("profile", "support", "why"),
    [
        (simulated("RTX 4090:24:8.9"), PIPER, "engine piper has no vLLM path for this model"),
        (simulated("RTX 4090:24:8.9"), replace(VLLM_SUPPORT, name="cv1", vllm=False),
         "engine cv1 has no vLLM path for this model"),
        (NO_GPU, VLLM_SUPPORT, f"no usable GPU: {NO_NVML_LIBRARY}"),
        (real("T4:16:7.5", torch_cuda="12.1", tensorrt_version="10.3.0"), VLLM_SUPPORT, "vllm is not installed"),
        (real("T4:16:7.5", vllm_version="0.9.0"), VLLM_SUPPORT,
         "no usable GPU: torch is not installed as a CUDA build"),
    ],
)
def test_vllm_not_tried_says_why(profile: HardwareProfile, support: EngineSupport, why: str) -> None:
    result = plan(profile, support)
    assert not any(c.vllm for c in result.candidates)
    assert result.vllm_skipped == why


def test_vllm_installed_on_a_real_profile_names_its_version() -> None:
    profile = real("T4:16:7.5", torch_cuda="12.1", tensorrt_version="10.3.0", vllm_version="0.9.0",
                   transformers_version="4.51.3")
    first = plan(profile, VLLM_SUPPORT).candidates[0]
    assert first.vllm and first.reason.startswith("vLLM 0.9.0 for the LLM on top of full")


def test_vllm_follows_the_tier_a_tuning_profile_puts_first() -> None:
    profile = simulated("T4:16:7.5")
    result = plan(profile, VLLM_SUPPORT, tuning_for(profile, VLLM_SUPPORT))
    assert [c.label for c in result.candidates[:3]] == ["jit_fp16 + vLLM", "jit_fp16", "full"]
    assert result.candidates[0].reason.endswith("on top of jit_fp16; dropped for jit_fp16 alone if it fails")
    measured_cpu = plan(profile, VLLM_SUPPORT, tuning_for(profile, VLLM_SUPPORT, best_tier="cpu"))
    assert tiers(list(measured_cpu.candidates)) == ["cpu"]
    assert measured_cpu.vllm_skipped == "the plan starts on cpu, and vLLM runs on CUDA only"


def test_plan_uses_the_gpu_with_most_free_memory() -> None:
    result = plan(simulated("GTX 1050:2:6.1", "T4:16:7.5"), PIPER)
    assert result.gpu is not None and (result.gpu.index, result.gpu.name) == (1, "T4")
    assert tiers(list(result.candidates)) == ALL


def tuning_for(profile: HardwareProfile, support: EngineSupport = PIPER, **fields: object) -> TuningProfile:
    values = {
        "fingerprint": tuning_fingerprint(profile, support),
        "best_tier": "jit_fp16",
        "measured": {"full": 0.15, "jit_fp16": 0.12, "cpu": 0.6},
        "created": "2026-11-22",
    }
    return TuningProfile(**{**values, **fields})


def test_tuning_profile_puts_measured_best_first() -> None:
    profile = simulated("T4:16:7.5")
    result = plan(profile, PIPER, tuning_for(profile))
    assert result.candidates[0] == Candidate(
        "jit_fp16", "measured best on this machine: RTF 0.12 (benchmark 2026-11-22)"
    )
    assert tiers(list(result.candidates[1:])) == ["full", "trt_fp16", "jit", "fp16", "basic", "cpu"]
    assert result.tuning_note.startswith("tuning profile applied")


def test_tuning_profile_for_another_fingerprint_is_ignored() -> None:
    profile = simulated("T4:16:7.5")
    for other in (tuning_for(simulated("RTX 4060:8:8.9")), tuning_for(profile, COSYVOICE)):
        result = plan(profile, PIPER, other)
        assert tiers(list(result.candidates)) == ALL
        assert "ignored" in result.tuning_note and "fingerprint" in result.tuning_note
    model = tuning_for(profile)
    assert "ignored" in plan(profile, PIPER, model, model_hash="other-model").tuning_note


def test_tuning_best_tier_not_allowed_here_is_ignored() -> None:
    tuned_on = simulated("T4:16:7.5")
    now = simulated("T4:3.9:7.5")  # same GPU model, so same fingerprint, but less memory free today
    result = plan(now, PIPER, tuning_for(tuned_on, best_tier="full"))
    assert tiers(list(result.candidates)) == ALL[2:]
    assert "not allowed here" in result.tuning_note and "needs >= 8 GB" in result.tuning_note


def test_failed_quality_tiers_are_never_tried() -> None:
    profile = simulated("T4:16:7.5")
    result = plan(profile, PIPER, tuning_for(profile, best_tier="trt_fp16", failed_quality=("full",)))
    assert tiers(list(result.candidates)) == ALL[1:]
    assert str(result.skipped[-1]) == "full: skipped, failed the quality check (benchmark 2026-11-22)"
    # cold-start first tier failed, measured best not allowed: the failed tier still is not first
    result = plan(simulated("T4:3.9:7.5"), PIPER, tuning_for(profile, best_tier="full", failed_quality=("jit_fp16",)))
    assert tiers(list(result.candidates)) == ["jit", "fp16", "basic", "cpu"]
    result = plan(profile, PIPER, tuning_for(profile, best_tier="jit_fp16", failed_quality=("jit_fp16",)))
    assert result.candidates[0].tier == "full" and "failed the quality check" in result.tuning_note


def test_measured_cpu_best_keeps_cpu_last() -> None:
    profile = simulated("T4:16:7.5")
    result = plan(profile, PIPER, tuning_for(profile, best_tier="cpu"))
    assert tiers(list(result.candidates)) == ["cpu"]
    assert result.candidates[0].reason == "measured best on this machine: RTF 0.6 (benchmark 2026-11-22)"
    assert {c.tier for c in result.skipped} == set(GPU_TIERS)


def test_tuning_profile_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "tuning.json"
    tuning = tuning_for(simulated("T4:16:7.5"), failed_quality=("full",))
    tuning.save(path)
    replace(tuning, best_tier="full").save(path)  # overwrite in place
    assert TuningProfile.load(path) == replace(tuning, best_tier="full")
    assert [p.name for p in path.parent.iterdir()] == ["tuning.json"]  # no temp file left behind
    assert json.loads(path.read_text())["failed_quality"] == ["full"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"fingerprint": "x"}',
        '{"fingerprint": "x", "best_tier": "full", "measured": {"full": "fast"}, "created": "d"}',
    ],
)
def test_tuning_profile_load_rejects_other_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tuning.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="not a tuning profile"):
        TuningProfile.load(path)


def test_tuning_profile_keeps_measured_shapes(tmp_path: Path) -> None:
    shapes = {"cpu": (ShapeMeasurement(PoolShape(1, 8), 0.2, 0.3, 10.0, 0.1, 12),
                      ShapeMeasurement(PoolShape(2, 4), 0.25, 0.4, 14.5, 0.15, 13))}
    tuning = tuning_for(simulated("T4:16:7.5"), shapes=shapes)
    tuning.save(tmp_path / "tuning.json")
    assert TuningProfile.load(tmp_path / "tuning.json") == tuning


def test_tuning_profile_written_before_shapes_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"fingerprint": "abc", "best_tier": "cpu", "measured": {"cpu": 0.4},
                                "created": "2026-11-22", "failed_quality": []}))
    assert TuningProfile.load(path).shapes == {}


def test_candidate_with_a_shape_starts_its_tier_in_that_shape() -> None:
    candidate = Candidate("cpu", "measured best", shape=PoolShape(2, 1))
    assert candidate.config.cli_args() == ["--tier", "cpu", "--trt_concurrent", "2", "--cpu_threads", "1"]
    assert Candidate("cpu", "cold start").config.cli_args() == ["--tier", "cpu"]
