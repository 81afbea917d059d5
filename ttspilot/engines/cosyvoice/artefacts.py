"""`precompile_trt.py` for CosyVoice: every file the asked tiers make upstream open, listed or built.

JIT zips and the estimator ONNX are exported from the fp32 model on the CPU, in a child process with
CUDA hidden (export_child.py); TensorRT plans are built here, on the GPU the tier runs on, from that
ONNX; the vLLM folder is written by upstream itself when it loads with load_vllm. What this machine
cannot build is listed with why (docs/architecture.md, "Caches").
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import ttspilot
from ttspilot.accel.cache import CacheWriteError
from ttspilot.config import OptimizationConfig
from ttspilot.engines.base import Artefact, EngineLoadError, LoadOptions
from ttspilot.engines.cosyvoice.acceleration import TierFile, tier_files
from ttspilot.engines.cosyvoice.exports import file_states
from ttspilot.engines.cosyvoice.plans import ensure_estimator_plan, estimator_plan_state, torch_cuda_capability
from ttspilot.engines.cosyvoice.upstream import upstream_on_path
from ttspilot.hardware import tensorrt_wheel
from ttspilot.progress import TqdmBuildProgress

log = logging.getLogger(__name__)

PACKAGE_PARENT = Path(ttspilot.__file__).resolve().parents[1]
SHOWN = {"ours": "valid", "foreign": "shipped"}  # placement states as precompile --list words them
PLAN_SHOWN = {"ours": "valid", "foreign": "foreign: moved aside at the next build"}


def needed_files(version: int, configs: Sequence[OptimizationConfig]) -> dict[TierFile, tuple[str, ...]]:
    """Each file the tiers open, with the tiers that open it, in upstream's order."""
    files: dict[TierFile, tuple[str, ...]] = {}
    for config in configs:
        for file in tier_files(version, config):
            files[file] = (*files.get(file, ()), config.tier)
    return files


def _code_on_path(options: LoadOptions) -> None:
    if options.cosyvoice_root is not None:
        try:
            upstream_on_path(options.cosyvoice_root)
        except FileNotFoundError as error:
            raise EngineLoadError(f"--cosyvoice_root: {error}") from None


def _tensorrt_version() -> str | None:
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


def _gpu_reason(capability: tuple[int, int] | None, tensorrt_version: str | None) -> str | None:
    if capability is None:
        return "needs a CUDA GPU: torch sees none"
    if tensorrt_version is None:
        return f"needs TensorRT: pip install {tensorrt_wheel()}"
    return None


def list_artefacts(model_dir: Path, version: int, configs: Sequence[OptimizationConfig], options: LoadOptions,
                   device_id: int) -> list[Artefact]:
    """Each needed file's state now; builds nothing."""
    needed = needed_files(version, configs)
    if not needed:
        return []
    _code_on_path(options)
    exported = {file: placed for file, placed in file_states(model_dir, version) if file in needed}
    capability, tensorrt_version = torch_cuda_capability(device_id), _tensorrt_version()
    rows = []
    for file, tiers in needed.items():
        if file in exported:
            placed = exported[file]
            rows.append(Artefact(file.name, file.kind, tiers, SHOWN.get(placed.status, placed.status), placed.reason,
                                 file.path(model_dir)))
        elif file.kind == "trt-plan":
            state = estimator_plan_state(model_dir, fp16=file.precision == "fp16", tensorrt_version=tensorrt_version,
                                         compute_capability=capability and f"{capability[0]}.{capability[1]}")
            rows.append(Artefact(file.name, file.kind, tiers, PLAN_SHOWN.get(state.state, state.state), state.reason,
                                 file.path(model_dir), needs_gpu=_gpu_reason(capability, tensorrt_version) is not None))
        else:
            rows.append(_vllm_row(model_dir, file, tiers))
    return rows


def _vllm_row(model_dir: Path, file: TierFile, tiers: tuple[str, ...]) -> Artefact:
    present = file.path(model_dir).is_dir()
    return Artefact(file.name, file.kind, tiers, "present" if present else "missing",
                    "written by upstream when it loads with load_vllm (CUDA only); nothing to precompile",
                    file.path(model_dir))


def _export(model_dir: Path, options: LoadOptions, force: bool) -> dict[str, dict]:
    """Run export_child.py with CUDA hidden; its results by file name."""
    command = [sys.executable, "-m", "ttspilot.engines.cosyvoice.export_child", "--model_dir", str(model_dir)]
    command += ["--cosyvoice_root", str(options.cosyvoice_root)] if options.cosyvoice_root else []
    command += ["--force"] if force else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))}
    log.info("exporting JIT zips and the estimator ONNX from %s on the CPU (a child process, CUDA hidden)",
             model_dir)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"export child exited with code {done.returncode}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {result["name"]: result for result in results}


def build_artefacts(model_dir: Path, version: int, configs: Sequence[OptimizationConfig], options: LoadOptions, *,
                    force: bool, device_id: int) -> list[Artefact]:
    """Build what this machine can: exports on the CPU, plans on this GPU with TensorRT; the rest says why not."""
    needed = needed_files(version, configs)
    if not needed:
        return []
    _code_on_path(options)
    # Loading the model for the export child takes tens of seconds: only when a needed export is not usable as is
    usable = {file.name: {"action": "kept" if placed.status == "ours" else "shipped", "detail": placed.reason,
                          "seconds": 0.0}
              for file, placed in file_states(model_dir, version) if placed.status in ("ours", "foreign")}
    exports = [file for file in needed if file.kind in ("torchscript", "onnx")]
    exported: dict[str, dict] = {} if force else usable
    export_error = None
    if any(file.name not in exported for file in exports):
        try:
            exported = _export(model_dir, options, force)
        except RuntimeError as error:
            export_error = str(error)
    capability, tensorrt_version = torch_cuda_capability(device_id), _tensorrt_version()
    rows = []
    for file, tiers in needed.items():
        path = file.path(model_dir)
        if file.kind in ("torchscript", "onnx"):
            result = exported.get(file.name)
            if result is None:
                rows.append(Artefact(file.name, file.kind, tiers, "failed", f"export failed: {export_error}", path,
                                     failed=True))
            else:
                rows.append(Artefact(file.name, file.kind, tiers, result["action"],
                                     f"{result['detail']} ({result['seconds']:.1f} s)", path))
        elif file.kind == "trt-plan":
            rows.append(_plan_row(model_dir, file, tiers, capability, tensorrt_version, force))
        else:
            rows.append(_vllm_row(model_dir, file, tiers))
    return rows


def _plan_row(model_dir: Path, file: TierFile, tiers: tuple[str, ...], capability: tuple[int, int] | None,
              tensorrt_version: str | None, force: bool) -> Artefact:
    path = file.path(model_dir)
    why_not = _gpu_reason(capability, tensorrt_version)
    if why_not is not None:
        return Artefact(file.name, file.kind, tiers, "skipped", why_not, path, needs_gpu=True)
    try:
        plan = ensure_estimator_plan(model_dir, fp16=file.precision == "fp16", force=force,
                                     compute_capability=f"{capability[0]}.{capability[1]}",
                                     progress=TqdmBuildProgress(f"TensorRT {file.name}"))
    except CacheWriteError:
        raise
    except Exception as error:  # noqa: BLE001  (PlanBuildError and what TensorRT raises: the row says why)
        return Artefact(file.name, file.kind, tiers, "failed", str(error).strip().splitlines()[0], path, failed=True)
    return Artefact(file.name, file.kind, tiers, plan.action,
                    f"cache {plan.cache} ({plan.build_seconds:.1f} s); was {plan.state_before}", path)
