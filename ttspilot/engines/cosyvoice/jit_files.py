"""Pre-flight of the JIT zips a load_jit tier makes upstream open, run at engine load on every machine.

Upstream opens `<model_dir>/<module>.<fp16|fp32>.zip` with torch.jit.load only when CUDA is
there (without it, it turns load_jit off), and a missing or broken zip then fails inside model
construction in torch's words. Here, before the model is built, whatever the machine:

- missing -> EngineLoadError naming the file and the precompile command that exports it;
- ours (placed by us for this key, unchanged) -> ok, judged by size and sha256, nothing loaded;
- corrupt or stale (ours, but changed, or built for other weights, code or torch) -> re-placed
  from its valid cache entry, else EngineLoadError with the command;
- foreign (shipped with the model or copied by hand) -> must load with torch.jit.load on the CPU,
  else EngineLoadError: the tier fails with its reason instead of crashing on the GPU.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ttspilot.accel.cache import check_entry, entry_path
from ttspilot.accel.fingerprint import FileHasher, hasher_for
from ttspilot.accel.placement import move_aside, place, placed_state
from ttspilot.accel.torchscript import SCRIPT_FILE, first_line
from ttspilot.config import OptimizationConfig, cache_dir_for
from ttspilot.engines.base import EngineLoadError
from ttspilot.engines.cosyvoice.acceleration import JIT_MODULES, TierFile, jit_file, precision
from ttspilot.engines.cosyvoice.exports import ExportResult, file_key, upstream_code_sha256, upstream_root

log = logging.getLogger(__name__)


def export_command(model_dir: Path) -> str:
    return f"python precompile_trt.py --model_dir {model_dir} --cosyvoice_root {upstream_root()}"


def _shipped_loads(target: Path, model_dir: Path) -> None:
    import torch

    try:
        torch.jit.load(str(target), map_location="cpu")
    except Exception as error:  # torch raises RuntimeError, ValueError, zipfile errors, ... for a bad archive
        raise EngineLoadError(f"{target.name} in {model_dir} does not load: {first_line(error)}; move it away and "
                              f"run `{export_command(model_dir)}`") from None


def check_jit_file(model_dir: Path, file: TierFile, *, code: str, hasher: FileHasher) -> ExportResult:
    """Make `file` fit for upstream's torch.jit.load or raise EngineLoadError (see the module docstring)."""
    started = time.perf_counter()
    cache_dir = cache_dir_for(model_dir)
    target = file.path(model_dir)
    if not target.is_file():
        raise EngineLoadError(f"{file.name} is missing in {model_dir}: export the JIT files with "
                              f"`{export_command(model_dir)}`")
    key = file_key(model_dir, file, code, hasher)
    found = placed_state(target, key, cache_dir, hasher)
    if found.status == "ours":
        action, detail = "ok", found.reason
    elif found.status == "foreign":
        _shipped_loads(target, model_dir)
        action, detail = "ok", "shipped with the model (not placed by ttspilot); it loads with torch.jit.load"
    else:  # corrupt or stale
        entry = entry_path(cache_dir, key)
        validity = check_entry(entry, key, hasher)
        if not validity.valid:
            raise EngineLoadError(f"{found.reason}, and its cache entry cannot restore it ({validity.reason}): "
                                  f"run `{export_command(model_dir)}`")
        move_aside(target, cache_dir, found.reason)
        place(entry / SCRIPT_FILE, target, key, cache_dir, hasher, entry)
        action, detail = "re-placed", f"{found.reason}; copied again from cache entry {entry.name}"
    result = ExportResult(file.name, file.kind, found.status, action, time.perf_counter() - started, detail)
    log.info("JIT pre-flight %s: %s -> %s (%.2f s): %s", result.name, result.before, result.action, result.seconds,
             result.detail)
    return result


def check_jit_files(model_dir: Path, version: int, config: OptimizationConfig, *,
                    hasher: FileHasher | None = None) -> list[ExportResult]:
    """Every zip upstream's load_jit opens for this version and precision, fit to load; [] without load_jit.

    The CosyVoice code must be importable (the engine has put `--cosyvoice_root` on sys.path).
    """
    modules = JIT_MODULES[version] if config.load_jit else ()
    if not modules:
        return []
    model_dir = Path(model_dir)
    hasher = hasher or hasher_for(cache_dir_for(model_dir))
    code = upstream_code_sha256()
    return [check_jit_file(model_dir, jit_file(module, precision(config)), code=code, hasher=hasher)
            for module in modules]
