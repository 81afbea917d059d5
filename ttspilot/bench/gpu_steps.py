"""The GPU paths `gpu_check` proves, one step each: what it needs, its time budget, and the work itself.

`prerequisite(facts)` runs in the parent without importing torch or TensorRT and says why a step cannot run
here (a skip); `run(work)` runs in a child process of the same python, so a hung CUDA call is killed at the
step's budget and a crash stays one step's failure. A child can still skip (torch without CUDA: found only by
importing it). Nothing here downloads anything: the Piper voice is the embedded one, CosyVoice models are
the tiny random-weight ones written by `engines/cosyvoice/tiny.py`, the TensorRT model is diagnose's two-node
graph. Budgets add up to under ten minutes (`TOTAL_BUDGET_S`), sized for one H200.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.config import TIERS
from ttspilot.hardware import tensorrt_wheel

TOTAL_BUDGET_S = 600.0
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
BENCH_TEXT = "A short sentence, said five times, to time the tier once its caches are warm."
BENCH_RUNS = 5


class StepSkipped(Exception):
    """A prerequisite found missing only inside the child (e.g. torch without CUDA)."""


class StepFailed(Exception):
    """The step ran and something it proves did not hold; the message is the one-line reason."""


@dataclass(frozen=True)
class Facts:
    """What the parent knows without importing torch or TensorRT: the probe and the installed packages."""

    gpu: str | None  # "NVIDIA H200 (compute 9.0, 139.8 GB free)" or None
    no_gpu_reason: str
    ort_version: str | None
    ort_providers: tuple[str, ...]
    piper: bool  # piper-tts is importable (the Piper steps load the embedded voice through it)
    tensorrt: bool  # the tensorrt Python package is importable
    torch: bool
    cosyvoice_root: Path | None  # an official checkout, or None
    cosyvoice_importable: bool  # `cosyvoice` importable without a root


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    budget_s: float
    prerequisite: Callable[[Facts], str | None]
    run: Callable[[Path], dict[str, Any]]  # work dir (shared by the steps of one run) -> figures
    after: tuple[str, ...] = ()  # steps that must have passed first


# --- prerequisites (parent) -----------------------------------------------------------------------

def needs_gpu(facts: Facts) -> str | None:
    return None if facts.gpu else f"no GPU visible: {facts.no_gpu_reason}"


def needs_ort_provider(provider: str) -> Callable[[Facts], str | None]:
    def check(facts: Facts) -> str | None:
        if facts.ort_version is None:
            return "onnxruntime is not importable"
        if provider not in facts.ort_providers:
            return (f"onnxruntime {facts.ort_version} has no {provider} (CPU build; the GPU build is "
                    "OPTIMIZATION.md's \"GPU install\")")
        if not facts.piper:
            return "piper-tts is not installed (requirements.txt)"
        return needs_gpu(facts)
    return check


def needs_tensorrt(facts: Facts) -> str | None:
    if not facts.tensorrt:
        return f"the tensorrt Python package is not installed (pip install {tensorrt_wheel()})"
    return needs_gpu(facts)


def needs_cosyvoice(trt: bool) -> Callable[[Facts], str | None]:
    def check(facts: Facts) -> str | None:
        if not facts.torch:
            return "torch is not installed (requirements-cosyvoice.txt)"
        if facts.cosyvoice_root is None and not facts.cosyvoice_importable:
            return "no CosyVoice code: pass --cosyvoice_root PATH (or TTSPILOT_COSYVOICE_ROOT)"
        if trt and not facts.tensorrt:
            return f"the tensorrt Python package is not installed (pip install {tensorrt_wheel()})"
        return needs_gpu(facts)
    return check


def tensorrt_importable() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


# --- the work (child) -----------------------------------------------------------------------------

def probe_and_plan(work: Path) -> dict[str, Any]:
    from ttspilot.engines import engine_support
    from ttspilot.hardware import probe
    from ttspilot.tiers import plan

    profile = probe()
    if not profile.gpus:
        raise StepFailed(f"NVML sees no GPU: {profile.gpu_absent_reason}")
    tier_plan = plan(profile, engine_support(None))
    return {"gpus": [{"index": g.index, "name": g.name, "compute_capability": g.compute_capability_text,
                      "memory_total_gb": round(g.memory_total / 2**30, 1),
                      "memory_free_gb": round(g.memory_free / 2**30, 1)} for g in profile.gpus],
            "driver": profile.driver_version, "cuda_driver": profile.cuda_driver_version,
            "planned_tiers": [c.label for c in tier_plan.candidates],
            "skipped_tiers": [str(c) for c in tier_plan.skipped]}


def _speak(engine: Any, text: str) -> tuple[Any, float]:
    import numpy as np

    started = time.perf_counter()
    chunks = list(engine.synthesize(text, engine.default_voice))
    seconds = time.perf_counter() - started
    return (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)), seconds


def _expect_flags(info: Any, flags: tuple[str, ...]) -> dict[str, Any]:
    states = {flag: {"active": state.active, "reason": state.reason} for flag, state in info.flags.items()}
    if info.device != "cuda":
        raise StepFailed(f"tier {info.tier} runs on {info.device} ({', '.join(info.providers)})")
    for flag in flags:
        if not states.get(flag, {}).get("active"):
            raise StepFailed(f"tier {info.tier}: {flag} is not active: {states.get(flag, {}).get('reason')}")
    return states


def _bench(engine: Any, sample_rate: int) -> dict[str, Any]:
    rtfs = []
    for _ in range(BENCH_RUNS):
        audio, seconds = _speak(engine, BENCH_TEXT)
        rtfs.append(seconds / max(audio.size / sample_rate, 1e-9))
    return {"bench_runs": BENCH_RUNS, "rtf_median": round(statistics.median(rtfs), 5),
            "rtf_min": round(min(rtfs), 5), "rtf_max": round(max(rtfs), 5)}


def piper_tier(tier: str, flags: tuple[str, ...], cache: tuple[str, ...] | None) -> Callable[[Path], dict]:
    """Load the embedded Piper voice on `tier` as the server does, then prove providers, cache, canary, speed.

    `cache`: the compiled-cache statuses that prove the step (None: the tier compiles nothing)."""
    def run(work: Path) -> dict[str, Any]:
        from ttspilot.canary import CANARY_TEXT, judge_audio
        from ttspilot.engines.piper import PiperEngine

        started = time.perf_counter()
        engine = PiperEngine.load(None, TIERS[tier])
        load_s = time.perf_counter() - started
        info = engine.info()
        figures: dict[str, Any] = {"providers": list(info.providers), "load_s": round(load_s, 3),
                                   "sessions": info.concurrency}
        figures["flags"] = _expect_flags(info, flags)
        used = info.models[0].cache if info.models else None
        figures["cache"] = used.as_dict() if used else None
        if cache is not None and (used is None or used.status not in cache):
            raise StepFailed(f"tier {tier}: compiled cache {used.status if used else 'none'}, expected one of "
                             f"{', '.join(cache)} ({used.reason if used else 'no cache used'})")
        audio, seconds = _speak(engine, CANARY_TEXT)
        verdict = judge_audio(audio, engine.sample_rate)
        figures["canary"] = verdict.reason
        if not verdict.passed:
            raise StepFailed(f"tier {tier}: canary failed: {verdict.reason}")
        figures.update(_bench(engine, engine.sample_rate))
        return figures
    return run


def trt_plan(work: Path) -> dict[str, Any]:
    """The plan builder (`accel/trt.py`) on diagnose's two-node model, then deserialized by TensorRT."""
    from ttspilot.accel.trt import build_plan, load_tensorrt
    from ttspilot.diagnose.onnxruntime_check import TINY_INPUT, tiny_model_bytes

    onnx_path = work / "tiny.onnx"
    onnx_path.write_bytes(tiny_model_bytes())
    shape = tuple(TINY_INPUT.shape)
    built = build_plan(onnx_path, work / "tiny.plan", {"x": (shape, shape, shape)}, fp16=True)
    trt = load_tensorrt()
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine((work / "tiny.plan").read_bytes())
    if engine is None:
        raise StepFailed("TensorRT could not deserialize the plan it built")
    return {"tensorrt": built.tensorrt_version, "plan_bytes": built.size_bytes, "build_s": round(built.seconds, 3),
            "fp16": built.fp16, "fast_fp16": built.fast_fp16}


def cosyvoice_tier(tier: str, flags: tuple[str, ...]) -> Callable[[Path], dict[str, Any]]:
    """A tiny CosyVoice2 on `tier`: its files precompiled as precompile_trt.py does, loaded, spoken on torch CUDA."""
    def run(work: Path) -> dict[str, Any]:
        import numpy as np
        import torch

        if not torch.cuda.is_available():
            raise StepSkipped(f"torch {torch.__version__} sees no CUDA device")
        from ttspilot.canary import CANARY_TEXT, judge_audio
        from ttspilot.engines.base import LoadOptions
        from ttspilot.engines.cosyvoice.engine import CosyVoiceEngine
        from ttspilot.engines.cosyvoice.tiny import make_tiny
        from ttspilot.engines.cosyvoice.upstream import upstream_on_path

        root = os.environ.get("TTSPILOT_COSYVOICE_ROOT")
        options = LoadOptions(cosyvoice_root=Path(root) if root else None)
        if options.cosyvoice_root is not None:
            upstream_on_path(options.cosyvoice_root)
        model_dir = make_tiny(2, work / "CosyVoice2-tiny")
        started = time.perf_counter()
        artefacts = CosyVoiceEngine.artefacts(model_dir, [TIERS[tier]], options, build=True)
        built_s = time.perf_counter() - started
        failed = [f"{a.name}: {a.detail}" for a in artefacts if a.failed or a.needs_gpu]
        if failed:
            raise StepFailed(f"tier {tier}: precompile: {failed[0]}")
        started = time.perf_counter()
        engine = CosyVoiceEngine.load(model_dir, TIERS[tier], options)
        figures: dict[str, Any] = {"torch": torch.__version__, "precompile_s": round(built_s, 3),
                                   "artefacts": {a.name: a.state for a in artefacts},
                                   "load_s": round(time.perf_counter() - started, 3)}
        figures["flags"] = _expect_flags(engine.info(), flags)
        audio, seconds = _speak(engine, CANARY_TEXT)
        if audio.size == 0 or not np.isfinite(audio).all():
            raise StepFailed(f"tier {tier}: the tiny model's audio is {'empty' if audio.size == 0 else 'not finite'}")
        # Random weights speak noise of no set length: the canary's verdict is recorded, finite audio is the bar.
        figures.update(call_s=round(seconds, 3), audio_s=round(audio.size / engine.sample_rate, 3),
                       canary=judge_audio(audio, engine.sample_rate).reason)
        return figures
    return run


STEPS: tuple[Step, ...] = (
    Step("probe", "NVML probe and tier plan on the real device", 20, needs_gpu, probe_and_plan),
    Step("piper_basic", "Piper tier basic: CUDA provider active, canary, benchmark", 45,
         needs_ort_provider(CUDA), piper_tier("basic", (), None), after=("probe",)),
    Step("piper_jit", "Piper tier jit: CUDA provider, optimized-graph cache built, canary, benchmark", 45,
         needs_ort_provider(CUDA), piper_tier("jit", ("load_jit",), ("built", "rebuilt", "hit")),
         after=("probe",)),
    Step("piper_trt_fp16", "Piper tier trt_fp16: TensorRT provider with FP16, engine cache built, canary, benchmark",
         120, needs_ort_provider(TRT), piper_tier("trt_fp16", ("load_trt", "fp16", "load_jit"), ("built", "rebuilt")),
         after=("probe",)),
    Step("piper_trt_cache_reuse", "Piper tier trt_fp16 again in a fresh process: the TensorRT engine cache is reused",
         40, needs_ort_provider(TRT), piper_tier("trt_fp16", ("load_trt", "fp16", "load_jit"), ("hit",)),
         after=("piper_trt_fp16",)),
    Step("piper_full", "Piper tier full: two TensorRT FP16 sessions from the engine cache, canary, benchmark", 40,
         needs_ort_provider(TRT), piper_tier("full", ("load_trt", "fp16", "load_jit"), ("hit",)),
         after=("piper_trt_fp16",)),
    Step("trt_plan_builder", "TensorRT plan builder (accel/trt.py): an FP16 plan for a tiny ONNX model", 45,
         needs_tensorrt, trt_plan, after=("probe",)),
    Step("cosyvoice_jit", "Tiny CosyVoice2, tier jit: TorchScript on torch CUDA, finite audio", 70,
         needs_cosyvoice(False), cosyvoice_tier("jit", ("load_jit",)), after=("probe",)),
    Step("cosyvoice_jit_fp16", "Tiny CosyVoice2, tier jit_fp16: TorchScript FP16 on torch CUDA, finite audio", 70,
         needs_cosyvoice(False), cosyvoice_tier("jit_fp16", ("load_jit", "fp16")), after=("probe",)),
    Step("cosyvoice_trt_fp16", "Tiny CosyVoice2, tier trt_fp16: TensorRT plan built and loaded, FP16, finite audio",
         100, needs_cosyvoice(True), cosyvoice_tier("trt_fp16", ("load_trt", "fp16")), after=("probe",)),
)
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
