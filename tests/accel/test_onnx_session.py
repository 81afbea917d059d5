"""What open_session reports: flags from the providers really active, with a reason for each inactive one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes_nvml import FakeGpu, FakeNvml
from ttspilot.accel import gpu as gpu_probe
from ttspilot.accel.cache import check_entry
from ttspilot.accel.fingerprint import FileHasher
from ttspilot.accel.gpu import GpuDevice, GpuPresence
from ttspilot.accel.onnx_session import (
    FP16_ON_CUDA_REASON,
    CacheUse,
    artifact_kind,
    open_session,
    session_flags,
    voice_cache_dir,
)
from ttspilot.accel.ort_tensorrt import ensure_engine_cache, ort_trt_key
from ttspilot.accel.providers import CPU, CUDA, TRT, piper_shape_profile, plan_providers
from ttspilot.config import TIERS, cache_dir_for, default_cache_root
from ttspilot.hardware import probe

ALL = [TRT, CUDA, CPU]


def flags_for(tier: str, active: list[str], cache: CacheUse | None = None, available=ALL, **kw):
    config = TIERS[tier]
    return session_flags(config, plan_providers(config, available), active, cache=cache, **kw)


def test_trt_session_reports_trt_fp16_and_engine_cache():
    cache = CacheUse("ort-trt", Path("/c/ort-trt/e"), "hit", "valid")
    flags = flags_for("full", [TRT, CUDA, CPU], cache)
    assert flags["load_trt"] == {"active": True, "reason": f"{TRT} active"}
    assert flags["fp16"] == {"active": True, "reason": "TensorRT FP16 kernels (trt_fp16_enable)"}
    assert flags["load_jit"]["active"] is True and "/c/ort-trt/e" in flags["load_jit"]["reason"]


def test_silent_fallback_to_cpu_is_reported():
    flags = flags_for("full", [CPU])  # TRT and CUDA requested and available, but only CPU came up
    assert flags["load_trt"] == {"active": False, "reason": f"{TRT} requested but ONNX Runtime fell back (see its log)"}
    assert flags["fp16"]["active"] is False
    assert "runs on the CPU in fp32" in flags["fp16"]["reason"]


def test_fp16_on_cuda_without_tensorrt_is_inactive_with_reason():
    flags = flags_for("fp16", [CUDA, CPU])
    assert flags["fp16"] == {"active": False, "reason": FP16_ON_CUDA_REASON}
    assert flags["load_trt"] == {"active": False, "reason": "not requested by tier"}
    assert flags["load_jit"] == {"active": False, "reason": "not requested by tier"}


def test_jit_on_cuda_reports_the_cached_graph():
    cache = CacheUse("cuda-graph", Path("/c/cuda-graph/e"), "built", "missing", 2.0)
    flags = flags_for("jit", [CUDA, CPU], cache)
    assert flags["load_jit"]["active"] is True
    assert "built and cached at /c/cuda-graph/e" in flags["load_jit"]["reason"]


def test_cpu_package_reasons():
    flags = flags_for("trt_fp16", [CPU], available=[CPU])
    assert (
        flags["load_trt"]["reason"]
        == f"{TRT} not available in this onnxruntime build (CPU package installed; install onnxruntime-gpu)"
    )


def test_tensorrt_build_problem_is_the_reason():
    flags = flags_for("full", [CUDA, CPU], trt_problem="TensorRT engine build failed: parse error")
    assert flags["load_trt"] == {"active": False, "reason": "TensorRT engine build failed: parse error"}


def test_artifact_kind_per_tier():
    kinds = {name: artifact_kind(tier, plan_providers(tier, ALL)) for name, tier in TIERS.items()}
    assert kinds == {
        "full": "ort-trt",
        "trt_fp16": "ort-trt",
        "jit_fp16": "cuda-graph",
        "jit": "cuda-graph",
        "fp16": None,
        "basic": None,
        "cpu": "cpu-graph",
    }


def test_cache_dirs():
    assert cache_dir_for(None) == default_cache_root()
    assert cache_dir_for(Path("/models/joe")) == Path("/models/joe/.ttspilot")
    assert voice_cache_dir(None, Path("/x/en_US-joe-medium.onnx")) == default_cache_root() / "en_US-joe-medium"
    assert voice_cache_dir(Path("/models"), Path("/models/a/b.onnx")) == Path("/models/.ttspilot/b")


def test_gpu_tier_on_this_cpu_build_runs_on_cpu_and_says_why(voice_model, tmp_path):
    opened = open_session(voice_model, TIERS["full"], tmp_path, available_providers=[CPU])
    assert opened.active_providers == [CPU]
    assert opened.requested_providers == [CPU]
    assert opened.device == "cpu"
    assert opened.flags["load_trt"]["active"] is False
    assert "not available in this onnxruntime build" in opened.flags["load_trt"]["reason"]
    assert any("not available in this onnxruntime build" in line for line in opened.decisions)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Specified provider")
def test_gpu_providers_that_do_not_load_are_detected(voice_model, tmp_path, monkeypatch):
    """ONNX Runtime is told TensorRT and CUDA exist (they do not): the session must say it fell back.

    FakeGpuPresence stands in for NVML so the TensorRT cache can be named; the real ONNX
    Runtime then ignores the GPU providers, and nothing half-built may stay in the cache.
    """
    fake_presence = GpuPresence(True, "FakeGpuPresence", (GpuDevice(0, "Fake GPU", "8.9"),), tuple(ALL))
    monkeypatch.setattr(gpu_probe, "detect_gpu", lambda: fake_presence)
    opened = open_session(voice_model, TIERS["full"], tmp_path, available_providers=ALL)
    assert opened.requested_providers == [TRT, CUDA, CPU]
    assert opened.active_providers == [CPU]
    assert opened.device == "cpu"
    assert opened.flags["load_trt"]["active"] is False
    assert "TensorRT execution provider did not load" in opened.flags["load_trt"]["reason"]
    assert opened.flags["fp16"]["active"] is False
    assert [p.name for p in (tmp_path / "ort-trt").iterdir() if not p.name.endswith(".lock")] == []
    assert not any(p.is_dir() for p in (tmp_path / "cuda-graph").iterdir())
    with pytest.raises(RuntimeError, match="TensorRT execution provider did not load"):
        open_session(voice_model, TIERS["full"], tmp_path, available_providers=ALL, strict=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Specified provider")
def test_pooled_gpu_sessions_probe_the_hardware_once(voice_model, tmp_path, monkeypatch):
    """A pool of GPU sessions asks for the compute capability per session; the machine is probed once."""
    probes = []

    def counting_probe():
        probes.append(1)
        return probe(FakeNvml([FakeGpu("Fake GPU", 8.0, 8.0, (8, 9))]))

    monkeypatch.setattr(gpu_probe, "probe", counting_probe)
    gpu_probe.detect_gpu.cache_clear()
    try:
        for _ in range(3):
            open_session(voice_model, TIERS["basic"], tmp_path, available_providers=[CUDA, CPU])
        assert gpu_probe.detect_gpu().device(0).compute_capability == "8.9"
    finally:
        gpu_probe.detect_gpu.cache_clear()
    assert len(probes) == 1


class FakeTrtSession:
    """Stands in for an InferenceSession whose TensorRT provider wrote engines into its cache path."""

    def __init__(self, cache_path: Path, providers: list[str]):
        self.providers = providers
        if TRT in providers:
            (cache_path / "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_0_sm89.engine").write_bytes(b"engine")
            (cache_path / "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_0_sm89.profile").write_bytes(b"profile")

    def get_providers(self):
        return self.providers


def trt_key(voice: Path):
    return ort_trt_key(
        voice,
        "ef" * 32,
        ort_version="1.31.1",
        tensorrt_version="10.9.0",
        compute_capability="8.9",
        fp16=True,
        profile=piper_shape_profile(["input", "input_lengths", "scales"]),
    )


def test_engine_cache_is_published_with_every_engine_file(tmp_path):
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"model")
    key = trt_key(voice)
    assert key.name.startswith("voice--ort1.31.1-trt10.9.0-sm89-fp16-srcefefefef-")
    opened_at = []

    def open_with(path: Path):
        opened_at.append(path)
        return FakeTrtSession(path, [TRT, CUDA, CPU])

    outcome = ensure_engine_cache(voice, tmp_path / "cache", key, FileHasher(None), open_with_cache_dir=open_with)
    assert outcome.status == "built"
    assert opened_at[0] != outcome.path  # built in staging, then published
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [
        "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_0_sm89.engine",
        "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_0_sm89.profile",
        "build-info.json",
    ]
    again = ensure_engine_cache(
        voice,
        tmp_path / "cache",
        key,
        FileHasher(None),
        open_with_cache_dir=lambda p: pytest.fail("pooled session must not rebuild"),
    )
    assert again.status == "hit"
    assert check_entry(again.path, key, FileHasher(None)).valid


def test_engine_cache_is_not_published_when_tensorrt_did_not_load(tmp_path):
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"model")
    with pytest.raises(RuntimeError, match="did not load"):
        ensure_engine_cache(
            voice,
            tmp_path / "cache",
            trt_key(voice),
            FileHasher(None),
            open_with_cache_dir=lambda p: FakeTrtSession(p, [CPU]),
        )
    assert [p.name for p in (tmp_path / "cache" / "ort-trt").iterdir() if not p.name.endswith(".lock")] == []
