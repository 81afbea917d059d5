"""Tier policy: which optimization tiers to try, in order, and why (docs/architecture.md, "Launcher").

A pure function of the hardware profile, what the engine can honour and an optional
measured tuning profile, so every choice the launcher makes can be tested without a GPU.

Cold-start rule, on the GPU with the most FREE memory (free, not total: another process's
allocations are what a tier has to live with):

- full >= 8 GB, trt_fp16 >= 4 GB, jit_fp16 >= 2 GB, jit/fp16/basic need no minimum.
- FP16 needs compute capability >= 7.0 (`FP16_MIN_CC`). FP16 runs from 5.3, but only tensor
  cores (Volta, 7.0, and newer) make it pay; consumer Pascal (6.1, GTX 10xx) runs FP16 at
  1/64 rate, and 6.0/6.2 (P100, Jetson TX2) are given up to keep the rule simple. Below 7.0
  the profile has "no FP16 support" and lands on `jit`.
- TensorRT needs compute capability >= 7.5 (`TRT_MIN_CC`): TensorRT 10.0 deprecated Volta
  (7.0/7.2) and later 10.x releases removed it, so a V100 takes the JIT route even where an
  early 10.x would still have built for it.
- TensorRT needs the library where the engine uses it: the ONNX Runtime TensorRT provider for
  onnxruntime engines (Piper), the tensorrt package for torch engines (CosyVoice), either for
  an engine that does not say. GPU tiers need a CUDA runtime the engine can use the same way.
  Simulated profiles (--simulate_gpu) assume these libraries are present.

A JIT flag the engine has no path for (CosyVoice3) rules no tier out: the engine runs the tier
without it and reports the flag inactive. A tier that then runs exactly like another allowed tier
that does not ask for JIT (CosyVoice3's jit_fp16 is its fp16) is skipped as that tier's duplicate.

The first candidate is the best tier the rule allows; then every lower allowed tier in
fallback order; `cpu` is always last. A measured tuning profile for the same fingerprint
puts its best tier first and removes tiers that failed its quality check.

vLLM (CosyVoice2/3's LLM) is an extra on top of a GPU tier, not a tier: when the engine has a
vLLM path for the model, the first candidate is a GPU tier and vllm is installed (assumed for
simulated profiles), that tier with vLLM goes first, and the launcher drops vLLM if it fails.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ttspilot.config import FALLBACK_ORDER, GPU_TIERS, TIERS, OptimizationConfig
from ttspilot.engines.base import EngineSupport
from ttspilot.hardware import GB, GpuInfo, HardwareProfile, best_gpu
from ttspilot.pool_shape import PoolShape, ShapeMeasurement

FP16_MIN_CC: tuple[int, int] = (7, 0)
TRT_MIN_CC: tuple[int, int] = (7, 5)
MIN_FREE_GB: dict[str, float] = {"full": 8.0, "trt_fp16": 4.0, "jit_fp16": 2.0}


@dataclass(frozen=True)
class Candidate:
    tier: str
    reason: str
    vllm: bool = False  # the tier with vLLM for the LLM (OptimizationConfig.load_vllm)
    shape: PoolShape | None = None  # a measured pool shape the launcher chose; None: the tier's own

    @property
    def label(self) -> str:
        return f"{self.tier} + vLLM" if self.vllm else self.tier

    @property
    def config(self) -> OptimizationConfig:
        config = replace(TIERS[self.tier], load_vllm=self.vllm)
        return self.shape.applied(config) if self.shape else config

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


@dataclass(frozen=True)
class TuningProfile:
    """A benchmark's verdict for one fingerprint (see `tuning_fingerprint`); written by the benchmark."""

    fingerprint: str
    best_tier: str
    measured: dict[str, float]  # tier -> median RTF
    created: str
    failed_quality: tuple[str, ...] = ()
    shapes: Mapping[str, tuple[ShapeMeasurement, ...]] = field(default_factory=dict)  # tier -> its measured shapes

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a profile."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
            json.dump(asdict(self), tmp, indent=2, sort_keys=True)
            tmp.flush()
            os.fsync(tmp.fileno())
        try:
            os.replace(tmp.name, path)
        except OSError:
            os.unlink(tmp.name)
            raise

    @classmethod
    def load(cls, path: str | Path) -> TuningProfile:
        """Read a saved profile (one written before shapes were measured has none); ValueError when it is not one."""
        try:
            data = json.loads(Path(path).read_text())
            profile = cls(
                fingerprint=str(data["fingerprint"]),
                best_tier=str(data["best_tier"]),
                measured={str(tier): float(rtf) for tier, rtf in data["measured"].items()},
                created=str(data["created"]),
                failed_quality=tuple(str(tier) for tier in data.get("failed_quality", ())),
                shapes={str(tier): tuple(ShapeMeasurement.from_dict(m) for m in rows)
                        for tier, rows in data.get("shapes", {}).items()},
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"{path}: not a tuning profile ({err})") from None
        return profile


@dataclass(frozen=True)
class TierPlan:
    candidates: tuple[Candidate, ...]  # try in this order; cpu is last
    skipped: tuple[Candidate, ...]  # tiers left out, each with why
    gpu: GpuInfo | None  # the GPU the GPU tiers run on (its index is the device id)
    tuning_note: str | None  # what became of the tuning profile, for the log
    vllm_skipped: str | None = None  # why no candidate has vLLM; None when the first one does


def tuning_fingerprint(profile: HardwareProfile, support: EngineSupport, model_hash: str = "") -> str:
    """The key a tuning profile is stored under and checked against: hardware, libraries, engine, model."""
    return profile.fingerprint({"engine": support.name, "model": model_hash})


def plan(
    profile: HardwareProfile, support: EngineSupport, tuning: TuningProfile | None = None, *, model_hash: str = ""
) -> TierPlan:
    """Ordered candidates (a vLLM one first where it can run), skipped tiers and the tuning verdict in one pass."""
    gpu = best_gpu(profile)
    no_gpu = _no_usable_gpu(profile, support, gpu)
    verdicts = {tier: [f"no usable GPU: {no_gpu}"] if no_gpu else _cannot_honour(TIERS[tier], profile, support, gpu)
                for tier in GPU_TIERS}
    twins = _same_without_jit([tier for tier, reasons in verdicts.items() if not reasons], support)
    skipped = [Candidate(tier, "skipped, " + ("; ".join(reasons) or f"{_no_jit(support)}: same as {twins[tier]}"))
               for tier, reasons in verdicts.items() if reasons or tier in twins]
    allowed = [tier for tier, reasons in verdicts.items() if not reasons and tier not in twins]
    candidates = [Candidate(tier, _fallback_reason(TIERS[tier], support)) for tier in allowed]
    if candidates:
        candidates[0] = Candidate(allowed[0], _cold_start_reason(allowed[0], gpu, skipped))
    candidates.append(Candidate("cpu", f"no usable GPU: {no_gpu}" if no_gpu else "last resort: CPU"))
    note = None
    if tuning is not None:
        candidates, skipped, note = _apply_tuning(
            tuning, tuning_fingerprint(profile, support, model_hash), candidates, skipped
        )
    vllm_skipped = _no_vllm(profile, support, no_gpu, candidates[0])
    if vllm_skipped is None:
        candidates.insert(0, Candidate(candidates[0].tier, _vllm_reason(profile, candidates[0].tier), vllm=True))
    return TierPlan(tuple(candidates), tuple(skipped), None if no_gpu else gpu, note, vllm_skipped)


def _same_without_jit(allowed: list[str], support: EngineSupport) -> dict[str, str]:
    """Allowed tiers asking for JIT the engine lacks -> the allowed tier that runs the same without asking for it."""
    if support.jit:
        return {}
    plain = {replace(TIERS[tier], tier=""): tier for tier in allowed if not TIERS[tier].load_jit}
    return {tier: plain[key] for tier in allowed
            if TIERS[tier].load_jit and (key := replace(TIERS[tier], tier="", load_jit=False)) in plain}


def _no_jit(support: EngineSupport) -> str:
    return f"engine {support.name} has no JIT path for this model"


def _no_vllm(profile: HardwareProfile, support: EngineSupport, no_gpu: str | None, first: Candidate) -> str | None:
    """Why the plan tries no vLLM candidate; None when it puts one before `first`."""
    if not support.vllm:
        return f"engine {support.name} has no vLLM path for this model"
    if no_gpu:
        return f"no usable GPU: {no_gpu}"
    if TIERS[first.tier].device != "cuda":
        return f"the plan starts on {first.tier}, and vLLM runs on CUDA only"
    if not profile.simulated and profile.libraries.vllm_version is None:
        return "vllm is not installed"
    return None


def _vllm_reason(profile: HardwareProfile, tier: str) -> str:
    version = profile.libraries.vllm_version
    which = f"vLLM {version}" if version else "vLLM (assumed installed for the simulated GPU)"
    return f"{which} for the LLM on top of {tier}; dropped for {tier} alone if it fails"


def _no_usable_gpu(profile: HardwareProfile, support: EngineSupport, gpu: GpuInfo | None) -> str | None:
    """Why no GPU tier can run at all, or None when one can."""
    if gpu is None:
        return profile.gpu_absent_reason or "no GPU found"
    if profile.simulated:
        return None
    libraries = profile.libraries
    ort_cuda = "CUDAExecutionProvider" in libraries.ort_providers
    torch_cuda = libraries.torch_cuda is not None
    if support.runtime == "onnxruntime" and not ort_cuda:
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    if support.runtime == "torch" and not torch_cuda:
        return "torch is not installed as a CUDA build"
    if support.runtime == "any" and not (ort_cuda or torch_cuda):
        return "neither onnxruntime's CUDAExecutionProvider nor a CUDA build of torch is installed"
    return None


def _cannot_honour(
    config: OptimizationConfig, profile: HardwareProfile, support: EngineSupport, gpu: GpuInfo
) -> list[str]:
    """Every reason this GPU tier cannot run here; empty when it can."""
    reasons = []
    cc = gpu.compute_capability
    if config.load_trt:
        if not support.trt:
            reasons.append(f"engine {support.name} has no TensorRT path")
        elif cc < TRT_MIN_CC:
            reasons.append(f"TensorRT needs compute capability >= {_cc(TRT_MIN_CC)}, GPU has {_cc(cc)}")
        elif not profile.simulated and (missing := _tensorrt_missing(profile, support)):
            reasons.append(missing)
    if config.fp16:
        if not support.fp16:
            reasons.append(f"engine {support.name} has no FP16 path")
        elif cc < FP16_MIN_CC:
            reasons.append(f"no FP16 support: compute capability {_cc(cc)} < {_cc(FP16_MIN_CC)}")
    minimum = MIN_FREE_GB.get(config.tier, 0.0)
    if gpu.memory_free < minimum * GB:
        reasons.append(f"needs >= {_gb(minimum)} GB free GPU memory, {_gb(gpu.memory_free / GB)} GB free")
    return reasons


def _tensorrt_missing(profile: HardwareProfile, support: EngineSupport) -> str | None:
    ort_trt = "TensorrtExecutionProvider" in profile.libraries.ort_providers
    tensorrt = profile.libraries.tensorrt_version is not None
    if support.runtime == "onnxruntime" and not ort_trt:
        return "TensorRT not installed (onnxruntime has no TensorrtExecutionProvider)"
    if support.runtime == "torch" and not tensorrt:
        return "TensorRT not installed (no tensorrt package)"
    if support.runtime == "any" and not (ort_trt or tensorrt):
        return "TensorRT not installed"
    return None


def _cold_start_reason(tier: str, gpu: GpuInfo, skipped: list[Candidate]) -> str:
    """Why the rule picks `tier`: its memory band, or why the band's own tier cannot run."""
    free = gpu.memory_free / GB
    where = f"{_gb(free)} GB free GPU memory on GPU {gpu.index} ({gpu.name}, compute {_cc(gpu.compute_capability)})"
    band = next(name for name in FALLBACK_ORDER if free >= MIN_FREE_GB.get(name, 0.0))
    if band == tier:
        return f"{where}: {_band(tier)}"
    why = next(candidate.reason for candidate in skipped if candidate.tier == band).removeprefix("skipped, ")
    return f"{where} fits {band}, but {why}; {tier} is the best tier left"


def _band(tier: str) -> str:
    """The free-memory band the cold-start rule gives `tier`: ">= 8 GB", "4-8 GB", "< 2 GB"."""
    lower = MIN_FREE_GB.get(tier)
    if lower is None:
        return f"< {_gb(min(MIN_FREE_GB.values()))} GB"
    higher = [gb for gb in MIN_FREE_GB.values() if gb > lower]
    return f"{_gb(lower)}-{_gb(min(higher))} GB" if higher else f">= {_gb(lower)} GB"


def _fallback_reason(config: OptimizationConfig, support: EngineSupport) -> str:
    parts = []
    if config.load_trt:
        parts.append(f"TensorRT x{config.trt_concurrent}")
    if config.load_jit and support.jit:
        parts.append("JIT")
    if config.fp16:
        parts.append("FP16")
    return "fallback: " + (" + ".join(parts) if parts else "plain FP32 on GPU")


def _apply_tuning(
    tuning: TuningProfile, fingerprint: str, candidates: list[Candidate], skipped: list[Candidate]
) -> tuple[list[Candidate], list[Candidate], str]:
    """Drop tiers that failed the benchmark's quality check and put the measured best tier first."""
    if tuning.fingerprint != fingerprint:
        note = f"tuning profile ignored: made for fingerprint {tuning.fingerprint}, this machine is {fingerprint}"
        return candidates, skipped, note + " (different hardware, driver, libraries, engine or model)"
    benchmark = f"benchmark {tuning.created}"
    failed = [c for c in candidates if c.tier in tuning.failed_quality and c.tier != "cpu"]
    skipped = skipped + [Candidate(c.tier, f"skipped, failed the quality check ({benchmark})") for c in failed]
    candidates = [c for c in candidates if c not in failed]
    if tuning.best_tier in tuning.failed_quality:
        return candidates, skipped, f"tuning profile ignored: its best tier {tuning.best_tier} failed the quality check"
    best = next((c for c in candidates if c.tier == tuning.best_tier), None)
    if best is None:
        why = next((c.reason for c in skipped if c.tier == tuning.best_tier), "unknown tier")
        return candidates, skipped, f"tuning profile ignored: measured best {tuning.best_tier} not allowed here ({why})"
    rtf = tuning.measured.get(best.tier)
    first = Candidate(
        best.tier, f"measured best on this machine: {f'RTF {rtf:.3g} ' if rtf is not None else ''}({benchmark})"
    )
    rest = [c for c in candidates if c is not best]
    if best.tier == "cpu":  # cpu stays last: GPU tiers measured slower are not worth a try
        skipped = skipped + [Candidate(c.tier, f"skipped, slower than cpu on this machine ({benchmark})") for c in rest]
        rest = []
    return [first, *rest], skipped, f"tuning profile applied: {first}"


def _cc(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def _gb(gb: float) -> str:
    """3.8, 7.99, 8: enough digits to see which side of a threshold a value is on."""
    return f"{gb:.2f}".rstrip("0").rstrip(".")
