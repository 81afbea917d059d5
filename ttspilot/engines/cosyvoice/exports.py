"""The TorchScript and ONNX files CosyVoice's JIT and TensorRT tiers open, built into the cache and placed.

Upstream's `bin/export_jit.py` writes `<module>.<fp32|fp16>.zip` for the modules its `load_jit`
replaces (v1: llm.text_encoder, llm.llm with `forward_chunk`, flow.encoder; v2: flow.encoder;
v3 none) and `bin/export_onnx.py` writes `flow.decoder.estimator.fp32.onnx` (batch 2, 80
channels, 256 frames, frames dynamic), which `load_trt` builds its plan from. Here each file is
built into the model's cache (`<model_dir>/.ttspilot`, keyed by torch version, weights, upstream
code and what the file is) from a model loaded on the CPU in fp32 without acceleration flags,
and copied to the name upstream opens (accel/placement.py). What is already there decides:

| found      | action                                                                  |
|------------|-------------------------------------------------------------------------|
| missing    | placed                                                                  |
| ours       | kept                                                                    |
| stale      | replaced: moved aside, placed (built for other weights, code or torch)  |
| corrupt    | replaced: moved aside, placed (changed since we placed it)              |
| foreign    | shipped: kept as it is (released models ship their JIT zips and ONNX)   |
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.accel.cache import CacheKey, CacheOutcome
from ttspilot.accel.fingerprint import FileHasher, hasher_for
from ttspilot.accel.onnx_export import ONNX_FILE as ONNX_ENTRY_FILE
from ttspilot.accel.onnx_export import OnnxSignature, ensure_onnx, onnx_key
from ttspilot.accel.placement import Placed, move_aside, place, placed_state
from ttspilot.accel.torchscript import SCRIPT_FILE, ensure_script, script_key
from ttspilot.config import cache_dir_for
from ttspilot.engines.cosyvoice.acceleration import (
    ESTIMATOR_INPUTS,
    JIT_MODULES,
    ONNX_FILE,
    PRESERVED_ATTRS,
    TierFile,
    jit_file,
)

log = logging.getLogger(__name__)

JIT_PRECISIONS = ("fp32", "fp16")  # upstream exports both; the fp16 flag picks one at load
UPSTREAM_PACKAGES = ("cosyvoice", "matcha")  # the code a script or an ONNX graph is a snapshot of
# upstream's export_onnx: get_dummy_input(batch 2, 256 frames, out_channels), opset 18, frames dynamic.
ESTIMATOR_FRAMES_EXPORTED = 256
ESTIMATOR_FRAMES_CHECKED = (16, 512)  # upstream checks random lengths in [16, 512]
DYNAMIC_FRAMES = {2: "seq_len"}
ESTIMATOR_SIGNATURE = OnnxSignature(
    input_names=("x", "mask", "mu", "t", "spks", "cond"),
    output_names=("estimator_out",),
    dynamic_axes={name: DYNAMIC_FRAMES for name in ("x", "mask", "mu", "cond", "estimator_out")},
    opset=18,
)


class ExportError(RuntimeError):
    """The model object cannot be exported from as it is; one line an operator can act on."""


@dataclass(frozen=True)
class ExportResult:
    """One file's outcome, for precompile's table and the engine's log."""

    name: str
    kind: str  # torchscript | onnx
    before: str  # missing, ours, stale, corrupt, foreign (placement.State)
    action: str  # export: placed, kept, replaced, shipped; JIT pre-flight: ok, re-placed
    seconds: float
    detail: str  # one line: why, and whether the cache entry was built or reused


def export_files(version: int) -> list[TierFile]:
    """Every file upstream's export scripts write for `version`, in their order."""
    return [jit_file(module, precision) for module in JIT_MODULES[version] for precision in JIT_PRECISIONS] + [
        ONNX_FILE]


def source_file(model_dir: Path, file: TierFile) -> Path:
    """The weights file the module is loaded from: llm.* from llm.pt, flow.* from flow.pt."""
    return Path(model_dir) / f"{file.module.split('.')[0]}.pt"


def _package_folder(package: str) -> Path:
    """Where the importable `package` lives (found on sys.path, not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(f"the CosyVoice code is not importable ({package!r} not found): pass --cosyvoice_root PATH")
    return Path(next(iter(spec.submodule_search_locations)))


def upstream_root() -> Path:
    """The checkout the importable `cosyvoice` package comes from."""
    return _package_folder("cosyvoice").parent


def upstream_code_sha256() -> str:
    """sha256 over the Python sources of the importable `cosyvoice` and `matcha` packages.

    A script or a traced graph carries the code as it was: a checkout that changed (the trees
    differ in the flow encoder's layers, for one) gets new files, never the old snapshot.
    """
    digest = hashlib.sha256()
    for package in UPSTREAM_PACKAGES:
        folder = _package_folder(package)
        for path in sorted(folder.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def estimator_input_shapes(frames: int) -> dict[str, tuple[int, ...]]:
    """Input name -> shape, in input order: the profile's leading dims plus `frames`; t (2,), spks (2, 80) fixed."""
    batch, channels = ESTIMATOR_INPUTS["x"]
    fixed = {"t": (batch,), "spks": (batch, channels)}
    return {name: fixed[name] if name in fixed else (*ESTIMATOR_INPUTS[name], frames)
            for name in ESTIMATOR_SIGNATURE.input_names}


def estimator_inputs(frames: int) -> tuple[Any, ...]:
    """x, mask, mu, t, spks, cond as upstream's get_dummy_input makes them (seeded here, for repeatable checks)."""
    import torch

    generator = torch.Generator().manual_seed(frames)
    return tuple(torch.ones(shape) if name == "mask" else torch.rand(shape, generator=generator)
                 for name, shape in estimator_input_shapes(frames).items())


def file_key(model_dir: Path, file: TierFile, code_sha256: str, hasher: FileHasher) -> CacheKey:
    """The cache key the file must have been placed from to count as ours."""
    import torch

    source_sha256 = hasher.sha256(source_file(model_dir, file))
    if file.kind == "torchscript":
        return script_key(file.module, source_sha256, code_sha256=code_sha256, precision=file.precision,
                          preserved_attrs=PRESERVED_ATTRS.get(file.module, ()), torch_version=torch.__version__)
    return onnx_key(file.module, source_sha256, code_sha256=code_sha256, signature=ESTIMATOR_SIGNATURE,
                    input_shapes=estimator_input_shapes(ESTIMATOR_FRAMES_EXPORTED), torch_version=torch.__version__)


def file_states(model_dir: Path, version: int, *, hasher: FileHasher | None = None) -> list[tuple[TierFile, Placed]]:
    """What is at each export's fixed path now, nothing built (`precompile_trt.py --list`)."""
    cache_dir = cache_dir_for(model_dir)
    hasher = hasher or hasher_for(cache_dir)
    code = upstream_code_sha256()
    return [(file, placed_state(file.path(model_dir), file_key(model_dir, file, code, hasher), cache_dir, hasher))
            for file in export_files(version)]


def _module_at(model: Any, dotted: str) -> Any:
    """`model.model.<dotted>`: upstream's model object holds llm and flow on its inner `model`."""
    return functools.reduce(getattr, dotted.split("."), model.model)


def _check_exportable(model: Any, file: TierFile) -> Any:
    """The eager fp32 CPU module to export from; the reason when load_jit, load_trt or fp16 replaced it."""
    import torch

    module = _module_at(model, file.module)
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        raise ExportError(f"{file.module} is a {type(module).__name__}, not the eager module: load the model "
                          "without load_jit/load_trt to export from it")
    weight = next(module.parameters(), None)
    if weight is not None and (weight.dtype != torch.float32 or weight.device.type != "cpu"):
        raise ExportError(f"{file.module} is {weight.dtype} on {weight.device}: export from the fp32 model on the CPU")
    return module


def _ensure(model: Any, model_dir: Path, file: TierFile, code: str, force: bool,
            hasher: FileHasher) -> tuple[CacheOutcome, Path]:
    """A valid cache entry for `file` and the artifact in it."""
    module = _check_exportable(model, file)
    cache_dir = cache_dir_for(model_dir)
    if file.kind == "torchscript":
        outcome = ensure_script(module, source_file(model_dir, file), cache_dir, name=file.module,
                                precision=file.precision, code_sha256=code,
                                preserved_attrs=PRESERVED_ATTRS.get(file.module, ()), force=force, hasher=hasher)
        return outcome, outcome.path / SCRIPT_FILE
    channels = ESTIMATOR_INPUTS["x"][1]
    if getattr(module, "out_channels", channels) != channels:
        raise ExportError(f"{file.module} has {module.out_channels} output channels; upstream's TensorRT path "
                          f"(get_trt_kwargs, forward_estimator) takes {channels}")
    outcome = ensure_onnx(module, source_file(model_dir, file), cache_dir, estimator_inputs, ESTIMATOR_SIGNATURE,
                          name=file.module, code_sha256=code, export_length=ESTIMATOR_FRAMES_EXPORTED,
                          check_lengths=ESTIMATOR_FRAMES_CHECKED, force=force, hasher=hasher)
    return outcome, outcome.path / ONNX_ENTRY_FILE


def export_one(model: Any, model_dir: Path, file: TierFile, *, code: str, force: bool = False,
               hasher: FileHasher) -> ExportResult:
    started = time.perf_counter()
    cache_dir = cache_dir_for(model_dir)
    target = file.path(model_dir)
    key = file_key(model_dir, file, code, hasher)
    found = placed_state(target, key, cache_dir, hasher)
    if found.status == "foreign":
        result = ExportResult(file.name, file.kind, found.status, "shipped", time.perf_counter() - started,
                              "not ours: kept as shipped, never overwritten")
    elif found.status == "ours" and not force:
        result = ExportResult(file.name, file.kind, found.status, "kept", time.perf_counter() - started, found.reason)
    else:
        outcome, artifact = _ensure(model, model_dir, file, code, force, hasher)
        if found.status in ("stale", "corrupt"):
            move_aside(target, cache_dir, found.reason)
        place(artifact, target, outcome.key, cache_dir, hasher, outcome.path)
        action = "placed" if found.status in ("missing", "ours") else "replaced"
        cache = (f"cache entry {outcome.status} in {outcome.build_seconds:.1f} s" if outcome.built
                 else "cache entry reused")
        result = ExportResult(file.name, file.kind, found.status, action, time.perf_counter() - started,
                              f"{cache}; {found.reason}")
    log.info("%s: %s -> %s (%.1f s): %s", result.name, result.before, result.action, result.seconds, result.detail)
    return result


def export_all(model: Any, model_dir: Path, version: int, *, force: bool = False,
               hasher: FileHasher | None = None) -> list[ExportResult]:
    """Build and place every JIT zip and the estimator ONNX for `version` from `model` (see the module docstring).

    `model`: upstream's CosyVoice/CosyVoice2/CosyVoice3 object for `model_dir`, loaded on the CPU
    in fp32 without acceleration flags. `force` rebuilds our entries; a shipped file stays.
    """
    model_dir = Path(model_dir)
    hasher = hasher or hasher_for(cache_dir_for(model_dir))
    code = upstream_code_sha256()
    return [export_one(model, model_dir, file, code=code, force=force, hasher=hasher) for file in export_files(version)]
