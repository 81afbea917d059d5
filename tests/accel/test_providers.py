"""Provider lists, provider options and session settings: pure functions, asserted exactly."""

from __future__ import annotations

import pytest

from ttspilot.accel.providers import (
    CPU,
    CUDA,
    TRT,
    cuda_options,
    format_shapes,
    piper_shape_profile,
    plan_providers,
    session_settings,
    tensorrt_options,
    validate_profile,
)
from ttspilot.config import TIERS, config_from_flags

ALL = [TRT, CUDA, CPU]
CPU_BUILD = ["AzureExecutionProvider", CPU]
PIPER_INPUTS = ["input", "input_lengths", "scales"]


def test_piper_profile_covers_dynamic_inputs_only():
    assert piper_shape_profile(PIPER_INPUTS) == {
        "input": ((1, 1), (1, 256), (1, 1024)),
        "input_lengths": ((1,), (1,), (1,)),
    }


def test_piper_profile_adds_sid_for_multi_speaker_voices():
    profile = piper_shape_profile([*PIPER_INPUTS, "sid"], max_phonemes=600, opt_phonemes=800, max_batch=4)
    assert profile == {
        "input": ((1, 1), (1, 600), (4, 600)),  # opt is clamped to max
        "input_lengths": ((1,), (1,), (4,)),
        "sid": ((1,), (1,), (4,)),
    }


def test_piper_profile_rejects_other_models():
    with pytest.raises(ValueError, match="not a Piper voice"):
        piper_shape_profile(["x", "mask"])


def test_shape_strings_use_the_trt_profile_syntax():
    profile = piper_shape_profile([*PIPER_INPUTS, "sid"])
    assert format_shapes(profile, 0) == "input:1x1,input_lengths:1,sid:1"
    assert format_shapes(profile, 1) == "input:1x256,input_lengths:1,sid:1"
    assert format_shapes(profile, 2) == "input:1x1024,input_lengths:1,sid:1"


@pytest.mark.parametrize(
    "profile, message",
    [
        ({"x": ((1, 2), (1, 1), (1, 4))}, "min <= opt <= max"),
        ({"x": ((1,), (1, 1), (1, 4))}, "ranks differ"),
        ({"x": ((1,), (2,))}, "needs \\(min, opt, max\\)"),
    ],
)
def test_profiles_are_validated(profile, message):
    with pytest.raises(ValueError, match=message):
        validate_profile(profile)


def test_tensorrt_options_exact():
    options = tensorrt_options(
        device_id=1,
        fp16=True,
        engine_cache_path="/c/ort-trt/entry",
        timing_cache_path="/c/ort-trt/entry",
        profile=piper_shape_profile(PIPER_INPUTS),
        workspace_bytes=1 << 30,
    )
    assert options == {
        "device_id": "1",
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": "/c/ort-trt/entry",
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": "/c/ort-trt/entry",
        "trt_max_workspace_size": "1073741824",
        "trt_profile_min_shapes": "input:1x1,input_lengths:1",
        "trt_profile_opt_shapes": "input:1x256,input_lengths:1",
        "trt_profile_max_shapes": "input:1x1024,input_lengths:1",
    }


def test_tensorrt_options_fp32():
    options = tensorrt_options(device_id=0, fp16=False, engine_cache_path="e", timing_cache_path="t", profile={})
    assert options["trt_fp16_enable"] == "False"
    assert "trt_profile_min_shapes" not in options


def test_cuda_options_exact():
    assert cuda_options(device_id=0) == {
        "device_id": "0",
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": "True",
    }
    assert cuda_options(device_id=2, gpu_mem_limit=3 << 30)["gpu_mem_limit"] == str(3 << 30)


@pytest.mark.parametrize(
    "tier, expected",
    [
        ("full", [TRT, CUDA, CPU]),
        ("trt_fp16", [TRT, CUDA, CPU]),
        ("jit_fp16", [CUDA, CPU]),
        ("jit", [CUDA, CPU]),
        ("fp16", [CUDA, CPU]),
        ("basic", [CUDA, CPU]),
        ("cpu", [CPU]),
    ],
)
def test_provider_order_follows_tier_flags(tier, expected):
    plan = plan_providers(TIERS[tier], ALL, trt={"trt_fp16_enable": "True"}, cuda={"device_id": "0"})
    assert plan.names == expected
    assert plan.skipped == {}
    assert dict(plan.providers).get(TRT, {}) == ({"trt_fp16_enable": "True"} if TRT in expected else {})
    assert plan.device == ("cpu" if tier == "cpu" else "cuda")


def test_cpu_only_build_explains_each_missing_provider():
    plan = plan_providers(TIERS["full"], CPU_BUILD)
    assert plan.names == [CPU]
    assert plan.device == "cpu"
    assert plan.skipped == {
        TRT: f"{TRT} not available in this onnxruntime build (CPU package installed; install onnxruntime-gpu)",
        CUDA: f"{CUDA} not available in this onnxruntime build (CPU package installed; install onnxruntime-gpu)",
    }


def test_cuda_build_without_tensorrt_keeps_cuda():
    plan = plan_providers(config_from_flags(load_trt=True, fp16=True), [CUDA, CPU])
    assert plan.names == [CUDA, CPU]
    assert plan.skipped[TRT].startswith(f"{TRT} not available in this onnxruntime build (available: ")


def test_cpu_sessions_skip_memory_reuse_planning_and_cached_graphs_skip_optimization():
    assert session_settings(device="cpu", threads=4, stage="online").__dict__ == {
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_num_threads": 4,
        "inter_op_num_threads": 1,
        "enable_mem_pattern": False,
        "enable_mem_reuse": False,
        "optimized_model_filepath": None,
    }
    build = session_settings(device="cpu", threads=4, stage="build", optimized_model_filepath="/x/model.onnx")
    assert (build.graph_optimization_level, build.optimized_model_filepath) == ("ORT_ENABLE_ALL", "/x/model.onnx")
    cached = session_settings(device="cpu", threads=4, stage="cached")
    assert cached.graph_optimization_level == "ORT_DISABLE_ALL"
    assert cached.optimized_model_filepath is None


def test_gpu_sessions_keep_onnxruntime_memory_defaults():
    settings = session_settings(device="cuda", threads=8, stage="cached")
    assert (settings.enable_mem_pattern, settings.enable_mem_reuse) == (True, True)


def test_session_settings_reject_nonsense():
    with pytest.raises(ValueError):
        session_settings(device="cpu", threads=1, stage="later")
    with pytest.raises(ValueError):
        session_settings(device="cpu", threads=1, stage="build")
