"""The checks in report order, what each needs from the machine (`Context`), and the tier to recommend.

Order matters for honesty, not only for reading: the ONNX Runtime provider checks run before
the TensorRT check imports tensorrt (which loads libnvinfer into this process and would let
ONNX Runtime's TensorRT provider find a library the server would not), and cuDNN and torch
are probed in child processes (see `probes.py`).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ttspilot.config import TIERS, cache_dir_for
from ttspilot.diagnose import (
    cosyvoice_check,
    cuda,
    model,
    network,
    nvidia,
    onnxruntime_check,
    packages,
    preload_check,
    system,
    tensorrt_check,
    vllm_check,
)
from ttspilot.diagnose.libraries import GpuLibraries, installed_distributions, ort_build
from ttspilot.diagnose.result import CheckResult, Finding, Status, failed
from ttspilot.engines import engine_support
from ttspilot.engines.base import EngineLoadError, EngineSupport
from ttspilot.hardware import HardwareProfile, probe
from ttspilot.tiers import plan

# CosyVoice folders are checked before an engine serves them; until one does, plan for its torch runtime.
COSYVOICE_SUPPORT = EngineSupport(trt=True, jit=True, fp16=True, name="cosyvoice", runtime="torch")


class Context:
    """What the checks share: the options, and facts probed once, on first use."""

    def __init__(self, model_dir: Path | None = None, host: str = "127.0.0.1", port: int = 9234, *,
                 nvml: Any = None, profile: HardwareProfile | None = None, cosyvoice_root: Path | None = None,
                 dists: dict[str, str] | None = None):
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.cosyvoice_root = cosyvoice_root
        self.host = host
        self.port = port
        self.nvml = nvml  # None: the real pynvml
        if profile is not None:
            self.__dict__["profile"] = profile
        if dists is not None:  # installed distributions as recorded elsewhere; None: read this python's
            self.__dict__["dists"] = dists

    @cached_property
    def profile(self) -> HardwareProfile:
        return probe(self.nvml)

    @cached_property
    def model(self) -> model.ModelInfo:
        return model.detect_model(self.model_dir)

    @cached_property
    def support(self) -> EngineSupport:
        """The serving engine's static support; for a folder no engine serves, the embedded voice's engine."""
        try:
            return engine_support(self.model_dir)
        except EngineLoadError:
            return COSYVOICE_SUPPORT if self.model.engine == "cosyvoice" else engine_support(None)

    @property
    def engine(self) -> str:
        return self.support.name

    @cached_property
    def dists(self) -> dict[str, str]:
        return installed_distributions()

    @cached_property
    def libs(self) -> GpuLibraries:
        return GpuLibraries.installed(self.profile, self.dists)

    @property
    def cache_dirs(self) -> list[Path]:
        """Where compiled caches are written."""
        return [cache_dir_for(self.model_dir)]


@dataclass(frozen=True)
class Check:
    name: str
    area: str
    summary: str  # one line for --help
    run: Callable[[Context], Finding]


def _cpu(ctx: Context) -> Finding:
    p = ctx.profile
    return system.check_cpu(p.cpu_cores, model=p.cpu_model, flags=p.cpu_flags, machine=p.platform.machine or None,
                            affinity=system.cpu_affinity(), cgroup_limit=system.read_cgroup_cpu_limit())


CHECKS: tuple[Check, ...] = (
    Check("os", "system", "operating system", lambda ctx: system.check_os()),
    Check("python", "system", "Python version (3.10-3.12 supported; 3.13 warned for CUDA stacks)",
          lambda ctx: system.check_python(cuda_stack=bool(ctx.profile.gpus) or ctx.engine == "cosyvoice")),
    Check("cpu", "system", "usable CPU cores and SIMD flags", _cpu),
    Check("ram", "system", "available memory for the model",
          lambda ctx: system.check_ram(ctx.profile.ram_total, ctx.profile.ram_available, engine=ctx.engine)),
    Check("disk", "system", "free and writable disk where caches live", lambda ctx: system.check_disk(ctx.cache_dirs)),
    Check("nvidia", "gpu", "NVIDIA driver and GPUs through NVML: memory, compute capability, processes",
          lambda ctx: nvidia.check_nvidia(ctx.profile, ctx.nvml)),
    Check("cuda_runtime", "gpu", "CUDA runtime of torch / onnxruntime / TensorRT against the driver",
          lambda ctx: cuda.check_cuda_runtime(ctx.profile, ctx.libs, engine=ctx.engine)),
    Check("cudnn", "gpu", "libcudnn.so.8 / .so.9 loadable, and which library needs which",
          lambda ctx: cuda.check_cudnn(ctx.profile, ctx.libs)),
    Check("onnxruntime", "onnxruntime", "version, CPU/GPU build, providers; a tiny model run on the CPU",
          lambda ctx: onnxruntime_check.check_onnxruntime()),
    Check("gpu_preload", "onnxruntime", "pip-installed CUDA, cuDNN and TensorRT libraries preloaded as the server does",
          lambda ctx: preload_check.check_gpu_preload()),
    Check("ort_cuda", "onnxruntime", "CUDAExecutionProvider really executes the tiny model (no silent CPU fallback)",
          lambda ctx: onnxruntime_check.check_ort_cuda(ctx.profile)),
    Check("ort_tensorrt", "onnxruntime", "TensorrtExecutionProvider really executes the tiny model",
          lambda ctx: onnxruntime_check.check_ort_tensorrt(ctx.profile)),
    Check("tensorrt", "tensorrt", "TensorRT import, builder, tiny engine build, compute capability support",
          lambda ctx: tensorrt_check.check_tensorrt(ctx.profile, engine=ctx.engine,
                                                    trt_cuda_major=ctx.libs.tensorrt_cuda_major)),
    Check("numpy", "packages", "NumPy 2 with onnxruntime < 1.19 (_ARRAY_API not found)",
          lambda ctx: packages.check_numpy(ctx.dists)),
    Check("onnxruntime_dists", "packages", "exactly one onnxruntime build installed (not onnxruntime + -gpu)",
          lambda ctx: packages.check_onnxruntime_dists(ctx.dists, ort_build(), gpu_present=bool(ctx.profile.gpus))),
    Check("transformers", "packages", "transformers version for CosyVoice 2/3",
          lambda ctx: packages.check_transformers(ctx.dists, engine=ctx.engine)),
    Check("vllm", "packages", "vllm/transformers pair against the pairs upstream documents (--load_vllm, CosyVoice2/3)",
          lambda ctx: vllm_check.check_vllm_pair(ctx.dists.get)),
    Check("model", "model", "engine of --model_dir and its required files",
          lambda ctx: model.check_model(ctx.model_dir)),
    Check("cache", "model", "compiled caches (optimized graphs, TensorRT engines) valid for this machine",
          lambda ctx: model.check_cache(ctx.model_dir, ctx.profile)),
    Check("cosyvoice", "model", "a tiny CosyVoice2 written, loaded through the engine and spoken (--cosyvoice_root)",
          lambda ctx: cosyvoice_check.check_cosyvoice(ctx.cosyvoice_root, ctx.engine)),
    Check("port", "network", "the server port is free", lambda ctx: network.check_port(ctx.host, ctx.port)),
)
CHECK_NAMES: tuple[str, ...] = tuple(check.name for check in CHECKS)


def run_check(check: Check, ctx: Context) -> CheckResult:
    """Run one check; a check that raises is reported (data["crashed"]) instead of ending the run."""
    started = time.perf_counter()
    try:
        finding = check.run(ctx)
    except Exception as exc:
        finding = failed(f"the check itself crashed: {type(exc).__name__}: {exc}",
                         "report a ttspilot bug with the output of diagnose_gpu.py --json",
                         crashed=True, traceback=traceback.format_exc(limit=8))
    return CheckResult.of(check.name, finding, area=check.area, seconds=time.perf_counter() - started)


def run_checks(ctx: Context, names: Sequence[str] | None = None,
               on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    unknown = [name for name in names or () if name not in CHECK_NAMES]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from: {', '.join(CHECK_NAMES)}")
    results = []
    for check in CHECKS:
        if names and check.name not in names:
            continue
        result = run_check(check, ctx)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


# Which failed checks rule a tier out, per engine runtime: GPU tiers need the runtime's CUDA path,
# TensorRT tiers its TensorRT path.
BLOCKERS = {
    "onnxruntime": {"gpu": ("ort_cuda",), "trt": ("ort_tensorrt",)},
    "torch": {"gpu": ("cuda_runtime",), "trt": ("tensorrt",)},
}


@dataclass(frozen=True)
class Recommendation:
    tier: str
    reason: str
    passed_over: tuple[str, ...] = ()  # tiers the hardware allows but a failed check rules out

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "reason": self.reason, "passed_over": list(self.passed_over)}


def recommend(ctx: Context, results: Sequence[CheckResult]) -> Recommendation:
    """The tier the launcher would try first (`tiers.plan`), moved down past tiers a failed check rules out."""
    candidates = [c for c in plan(ctx.profile, ctx.support).candidates if not c.vllm]  # vLLM rides on a tier
    failed_checks = {r.name for r in results if r.status is Status.FAIL}
    blockers = BLOCKERS[ctx.support.runtime]
    passed_over = []
    for candidate in candidates:
        config = TIERS[candidate.tier]
        needs = (blockers["gpu"] if config.device == "cuda" else ()) + (blockers["trt"] if config.load_trt else ())
        blocking = [name for name in needs if name in failed_checks]
        if blocking:
            passed_over.append(f"{candidate.tier} (check {', '.join(blocking)} failed)")
            continue
        reason = candidate.reason + (f"; passed over: {', '.join(passed_over)}" if passed_over else "")
        return Recommendation(candidate.tier, reason, tuple(passed_over))
    last = candidates[-1]
    return Recommendation(last.tier, last.reason, tuple(passed_over))
