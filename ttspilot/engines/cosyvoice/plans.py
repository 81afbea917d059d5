"""TensorRT plans for CosyVoice's flow decoder estimator, built by our builder and placed only when valid here.

Upstream's `load_trt` (both trees) opens `<model_dir>/flow.decoder.estimator.<fp16|fp32>.mygpu.plan`
whenever that file exists and is not empty, whatever GPU or TensorRT built it, and converts the ONNX
itself only when it is missing. So the plan is built by `ttspilot.accel.trt` into the model's cache
(`<model_dir>/.ttspilot/trt-plan/`, keyed by compute capability, TensorRT version, ONNX sha256,
precision, I/O type and upstream's shape profile) and copied to the fixed path with a record
(`accel/placement.py`). What is found there is kept only when it is `ours` for this key; a stale,
corrupt or foreign plan is moved aside before the build, so a failed build leaves nothing upstream
would load. FP16 plans bind HALF inputs and outputs, as upstream's convert_onnx_to_trt builds them:
its TrtContextWrapper passes the flow's half tensors straight to the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ttspilot.accel.cache import CacheError, check_entry, entry_path, held_lock
from ttspilot.accel.fingerprint import FileHasher, hasher_for, sm_tag
from ttspilot.accel.placement import move_aside, place, placed_state, record_path
from ttspilot.accel.trt import PLAN_FILE, BuildProgress, PlanBuildError, ensure_plan, load_tensorrt, plan_key
from ttspilot.config import OptimizationConfig, cache_dir_for
from ttspilot.engines.base import EngineLoadError
from ttspilot.engines.cosyvoice.acceleration import ONNX_FILE, estimator_profile, plan_file

log = logging.getLogger("ttspilot.engines.cosyvoice")

UNTRUSTED = ("stale", "corrupt", "foreign")

# device index -> (major, minor) compute capability, or None when no CUDA device is visible
CudaCapability = Callable[[int], tuple[int, int] | None]


@dataclass(frozen=True)
class EstimatorPlan:
    """What `ensure_estimator_plan` found at the fixed path and did there."""

    path: Path  # the file upstream opens
    state_before: str  # placement state found there: missing, ours, stale, corrupt, foreign
    action: Literal["kept", "placed", "replaced"]  # replaced: what was there was moved aside first
    cache: str  # the cache entry: hit, built or rebuilt
    build_seconds: float
    entry: Path  # the cache entry the plan comes from
    moved_aside: Path | None = None


@dataclass(frozen=True)
class PlanState:
    """For `precompile_trt.py --list`. state: a placement state, or `unchecked` when this machine lacks
    what the plan's key is made of (a GPU, TensorRT, the ONNX source)."""

    state: str
    reason: str


def _precision(fp16: bool) -> str:
    return "fp16" if fp16 else "fp32"


def _missing_onnx(model_dir: Path) -> str:
    return (f"{ONNX_FILE.name} is not in {model_dir}: export it with "
            f"`python precompile_trt.py --model_dir {model_dir} --cosyvoice_root TREE`")


def _estimator_key(onnx_path: Path, hasher: FileHasher, *, fp16: bool, tensorrt_version: str,
                   compute_capability: str):
    return plan_key(onnx_path, hasher.sha256(onnx_path), tensorrt_version=tensorrt_version,
                    compute_capability=compute_capability, fp16=fp16, profiles=estimator_profile(), half_io=fp16)


def ensure_estimator_plan(
    model_dir: Path,
    *,
    fp16: bool,
    compute_capability: str,
    trt: Any = None,
    force: bool = False,
    progress: BuildProgress | None = None,
) -> EstimatorPlan:
    """A plan valid for this GPU and TensorRT at the path upstream opens; built or reused from the cache.

    Raises PlanBuildError (no ONNX, no tensorrt, a failed build) or CacheError (folder not writable,
    disk full, lock timeout). A plan found there that is not ours for this key is moved aside first.
    """
    model_dir = Path(model_dir)
    onnx_path = ONNX_FILE.path(model_dir)
    if not onnx_path.is_file():
        raise PlanBuildError(_missing_onnx(model_dir))
    trt = trt if trt is not None else load_tensorrt()
    cache_dir = cache_dir_for(model_dir)
    hasher = hasher_for(cache_dir)
    target = plan_file(_precision(fp16)).path(model_dir)
    key = _estimator_key(onnx_path, hasher, fp16=fp16, tensorrt_version=str(trt.__version__),
                         compute_capability=compute_capability)
    # Held across the build: a second server on this folder waits, then finds the plan ours and keeps it.
    with held_lock(record_path(cache_dir, target).with_suffix(".lock"), target.name):
        before = placed_state(target, key, cache_dir, hasher)
        moved = move_aside(target, cache_dir, before.reason) if before.status in UNTRUSTED else None
        if not check_entry(entry_path(cache_dir, key), key, hasher).valid or force:
            log.info("building TensorRT plan %s from %s for %s, TensorRT %s (minutes on a full-size model)",
                     target.name, onnx_path.name, sm_tag(compute_capability), trt.__version__)
        outcome = ensure_plan(onnx_path, cache_dir, estimator_profile(), fp16=fp16, half_io=fp16,
                              compute_capability=compute_capability, force=force, progress=progress, trt=trt,
                              hasher=hasher)
        if before.status == "ours" and not outcome.built:
            action = "kept"
        else:
            place(outcome.path / PLAN_FILE, target, outcome.key, cache_dir, hasher, outcome.path)
            action = "replaced" if moved is not None else "placed"
    result = EstimatorPlan(target, before.status, action, outcome.status, outcome.build_seconds, outcome.path, moved)
    cache_line = (f"built in {outcome.build_seconds:.1f} s ({outcome.reason})" if outcome.built
                  else "found valid in the cache")
    log.info("TensorRT plan %s for %s, TensorRT %s: %s; %s at the path upstream opens (was %s)",
             target.name, sm_tag(compute_capability), trt.__version__, cache_line, action, before.status)
    return result


def estimator_plan_state(
    model_dir: Path, *, fp16: bool, compute_capability: str | None, tensorrt_version: str | None
) -> PlanState:
    """What is at the plan's fixed path, judged as `ensure_estimator_plan` would; builds and imports nothing."""
    model_dir = Path(model_dir)
    target = plan_file(_precision(fp16)).path(model_dir)
    onnx_path = ONNX_FILE.path(model_dir)
    lacking = [why for why, lacks in (
        ("no GPU compute capability known", not compute_capability),
        ("TensorRT is not installed", not tensorrt_version),
        (_missing_onnx(model_dir), not onnx_path.is_file()),
    ) if lacks]
    if lacking:
        if not target.is_file():
            return PlanState("missing", f"{target.name} is not in {model_dir}; it cannot be built here: "
                                        + "; ".join(lacking))
        return PlanState("unchecked", f"{target.name} cannot be checked here: " + "; ".join(lacking))
    cache_dir = cache_dir_for(model_dir)
    hasher = hasher_for(cache_dir)
    key = _estimator_key(onnx_path, hasher, fp16=fp16, tensorrt_version=str(tensorrt_version),
                         compute_capability=str(compute_capability))
    found = placed_state(target, key, cache_dir, hasher)
    return PlanState(found.status, found.reason)


def torch_cuda_capability(device_id: int) -> tuple[int, int] | None:
    """(major, minor) of CUDA device `device_id` as torch sees it; None when torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(device_id)
    return int(major), int(minor)


def prepare_plan_for_load(
    model_dir: Path,
    config: OptimizationConfig,
    *,
    device_id: int,
    trt: Any = None,
    cuda_capability: CudaCapability | None = None,
) -> EstimatorPlan | None:
    """Before upstream's load_trt: a valid plan at its path, or EngineLoadError so the launcher drops the tier.

    `trt` (the tensorrt module) and `cuda_capability` (see CudaCapability) default to the real ones.
    """
    if not config.load_trt:
        return None
    capability = (cuda_capability or torch_cuda_capability)(device_id)
    if capability is None:
        # Upstream's CosyVoice*.__init__ does the same: no CUDA -> load_trt (and fp16) off, with a warning.
        log.info("TensorRT plan not prepared: torch sees no CUDA device, so upstream turns load_trt off")
        return None
    try:
        trt = trt if trt is not None else load_tensorrt()
        return ensure_estimator_plan(model_dir, fp16=config.fp16, compute_capability=f"{capability[0]}.{capability[1]}",
                                     trt=trt)
    except (PlanBuildError, CacheError) as error:
        raise EngineLoadError(f"TensorRT flow plan: {error}") from error
