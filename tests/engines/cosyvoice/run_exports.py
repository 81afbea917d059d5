"""Export a tiny CosyVoice folder's JIT zips and estimator ONNX, then exercise placement and the JIT pre-flight.

Runs with the CosyVoice environment's python (the test venv has no torch), one process per tree
for all its versions:
    python tests/engines/cosyvoice/run_exports.py TREE VERSION=MODEL_DIR [VERSION=MODEL_DIR ...]
Prints one JSON line, per version what test_exports.py checks. The steps run in order on each folder:
export twice (timed), load and run every file, then damage files and export / pre-flight again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from ttspilot.engines.cosyvoice.upstream import upstream_on_path


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def encoder_inputs(model: Any, module: str, frames: int = 12) -> tuple[list[Any], dict[str, Any]]:
    """Arguments as upstream's own code calls each JIT module (llm.encode, llm.inference, flow.inference)."""
    import torch

    generator = torch.Generator().manual_seed(frames)
    inner = model.model
    width = {"llm.text_encoder": lambda: inner.llm.text_embedding.embedding_dim,
             "llm.llm": lambda: inner.llm.llm_embedding.embedding_dim,
             "flow.encoder": lambda: inner.flow.input_embedding.embedding_dim}[module]()
    xs = torch.randn((1, frames, width), generator=generator)
    if module == "llm.llm":
        mask = torch.tril(torch.ones((1, frames, frames))).to(torch.bool)
        return [xs], {"offset": 0, "required_cache_size": -1, "att_cache": torch.zeros((0, 0, 0, 0)),
                      "cnn_cache": torch.zeros((0, 0, 0, 0)), "att_mask": mask}
    return [xs, torch.tensor([frames], dtype=torch.int32)], {}


def call(module: Any, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The first tensor output; llm.llm is driven through forward_chunk, as upstream's inference loop does."""
    import torch

    with torch.no_grad():
        out = module.forward_chunk(*args, **kwargs) if name == "llm.llm" else module(*args, **kwargs)
    return out[0]


def check_jit(model: Any, model_dir: Path, version: int) -> dict[str, Any]:
    import torch

    from ttspilot.engines.cosyvoice.acceleration import JIT_MODULES, jit_file

    seen: dict[str, Any] = {}
    for module in JIT_MODULES[version]:
        eager = model.model
        for part in module.split("."):
            eager = getattr(eager, part)
        args, kwargs = encoder_inputs(model, module)
        expected = call(eager, module, args, kwargs)
        for precision in ("fp32", "fp16"):
            name = jit_file(module, precision).name
            script = torch.jit.load(str(model_dir / name), map_location="cpu")
            row: dict[str, Any] = {"loaded": isinstance(script, torch.jit.ScriptModule),
                                   "forward_chunk": hasattr(script, "forward_chunk")}
            cast = [a.half() if torch.is_tensor(a) and a.is_floating_point() else a for a in args] \
                if precision == "fp16" else args
            try:
                got = call(script, module, cast, kwargs).float()
                row["ran"] = True
                row["max_abs_diff"] = float((got - expected).abs().max())
                row["finite"] = bool(torch.isfinite(got).all())
            except Exception as error:  # fp16 kernels missing on this CPU: reported, the test then only loads
                row["ran"] = False
                row["error"] = first_line(error)
            seen[name] = row
        seen[f"{module}:eager_dtype"] = str(next(eager.parameters()).dtype)
    return seen


def check_onnx(model: Any, model_dir: Path) -> dict[str, Any]:
    import numpy as np
    import onnxruntime
    import torch
    from cosyvoice.cli.model import CosyVoiceModel

    from ttspilot.accel.onnx_export import declared_shapes
    from ttspilot.engines.cosyvoice.acceleration import ESTIMATOR_ONNX, estimator_profile
    from ttspilot.engines.cosyvoice.exports import ESTIMATOR_SIGNATURE, estimator_inputs

    path = model_dir / ESTIMATOR_ONNX
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    estimator = model.model.flow.decoder.estimator
    differences = {}
    for frames in (37, 300):  # neither the export length nor the build's own check lengths
        inputs = estimator_inputs(frames)
        with torch.no_grad():
            expected = estimator(*inputs).numpy()
        got = session.run(None, dict(zip(ESTIMATOR_SIGNATURE.input_names, (i.numpy() for i in inputs))))[0]
        differences[frames] = float(np.max(np.abs(got - expected)))
    trt_kwargs = CosyVoiceModel.get_trt_kwargs(None)  # upstream's profile, the same for every model class
    return {
        "inputs": [i.name for i in session.get_inputs()],
        "outputs": [o.name for o in session.get_outputs()],
        "declared": {name: list(shape) for name, shape in declared_shapes(path).items()},
        "max_abs_diff": differences,
        "out_channels": int(estimator.out_channels),
        "profile": {name: [list(s) for s in shapes] for name, shapes in estimator_profile().items()},
        "upstream_profile": {name: [list(trt_kwargs[which][index]) for which in ("min_shape", "opt_shape", "max_shape")]
                             for index, name in enumerate(trt_kwargs["input_names"])},
    }


def results(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"name": r.name, "kind": r.kind, "before": r.before, "action": r.action, "seconds": round(r.seconds, 3),
             "detail": r.detail} for r in rows]


def damage_and_reexport(model: Any, model_dir: Path, version: int) -> dict[str, Any]:
    """One file each corrupt, stale and foreign, then export again: what each became, and what is on disk."""
    from ttspilot.accel.placement import record_path
    from ttspilot.config import cache_dir_for
    from ttspilot.engines.cosyvoice.exports import export_all, export_files

    cache_dir = cache_dir_for(model_dir)
    files = [f.path(model_dir) for f in export_files(version)]
    corrupt, stale, foreign = files[0], files[1], files[-1]
    with open(corrupt, "ab") as handle:
        handle.write(b"tampered")
    record = json.loads(record_path(cache_dir, stale).read_text())
    record["key"]["torch"] = "0.0.0"  # as if placed by an older torch
    record_path(cache_dir, stale).write_text(json.dumps(record))
    record_path(cache_dir, foreign).unlink()  # no record: as if shipped with the model
    shipped_bytes = foreign.read_bytes() + b"\0shipped"
    foreign.write_bytes(shipped_bytes)
    started = time.perf_counter()
    rows = export_all(model, model_dir, version)
    return {
        "files": {"corrupt": corrupt.name, "stale": stale.name, "foreign": foreign.name},
        "results": results(rows),
        "seconds": time.perf_counter() - started,
        "shipped_unchanged": foreign.read_bytes() == shipped_bytes,
        "moved_aside": sorted(p.name for p in model_dir.glob("*.moved-aside-*")),
    }


def preflight(model_dir: Path, version: int) -> dict[str, Any]:
    """The JIT pre-flight on the placed files, then a corrupted placed zip, a garbage shipped zip, a missing zip."""
    from ttspilot.accel.placement import record_path
    from ttspilot.config import TIERS, cache_dir_for
    from ttspilot.engines.base import EngineLoadError
    from ttspilot.engines.cosyvoice.acceleration import JIT_MODULES, jit_file
    from ttspilot.engines.cosyvoice.jit_files import check_jit_files

    config = TIERS["jit_fp16"]
    seen: dict[str, Any] = {}

    def attempt(label: str) -> None:
        started = time.perf_counter()
        try:
            seen[label] = {"results": results(check_jit_files(model_dir, version, config))}
        except EngineLoadError as error:
            seen[label] = {"error": error.reason}
        seen[label]["seconds"] = time.perf_counter() - started

    attempt("placed")
    if not JIT_MODULES[version]:
        return seen
    target = jit_file(JIT_MODULES[version][0], "fp16").path(model_dir)
    placed_bytes = target.read_bytes()
    target.write_bytes(placed_bytes[: len(placed_bytes) // 2])
    attempt("corrupt_placed")
    seen["restored"] = target.read_bytes() == placed_bytes
    record_path(cache_dir_for(model_dir), target).unlink()
    target.write_bytes(b"this is not a zip archive" * 40)
    attempt("garbage_shipped")
    target.unlink()
    attempt("missing")
    return seen


def entries(model_dir: Path, version: int) -> dict[str, dict[str, Any]]:
    """Each file's cache entry: valid against its key (manifest, sizes, sha256), and the manifest's file list."""
    from ttspilot.accel.cache import check_entry, entry_path, read_manifest
    from ttspilot.accel.fingerprint import FileHasher
    from ttspilot.config import cache_dir_for
    from ttspilot.engines.cosyvoice.exports import export_files, file_key, upstream_code_sha256

    hasher, code, cache_dir = FileHasher(), upstream_code_sha256(), cache_dir_for(model_dir)
    seen = {}
    for file in export_files(version):
        key = file_key(model_dir, file, code, hasher)
        entry = entry_path(cache_dir, key)
        seen[file.name] = {"kind": entry.parent.name, "valid": check_entry(entry, key, hasher).valid,
                           "files": sorted((read_manifest(entry) or {}).get("files", {}))}
    return seen


def exercise(cli: Any, version: int, model_dir: Path) -> dict[str, Any]:
    import torch

    from ttspilot.engines.cosyvoice.engine import CLASS_NAMES
    from ttspilot.engines.cosyvoice.exports import export_all, file_states

    model = getattr(cli, CLASS_NAMES[version])(model_dir=str(model_dir))

    def weights() -> dict[str, Any]:
        return {f"{part}.{name}": tensor for part in ("llm", "flow")
                for name, tensor in getattr(model.model, part).state_dict().items()}

    before = {name: tensor.clone() for name, tensor in weights().items()}
    timed = []
    for _ in range(2):
        started = time.perf_counter()
        rows = export_all(model, model_dir, version)
        timed.append({"seconds": time.perf_counter() - started, "results": results(rows)})
    after = weights()
    return {
        "runs": timed,
        "caller_unchanged": all(torch.equal(before[name], after[name]) for name in before),
        "states": {file.name: placed.status for file, placed in file_states(model_dir, version)},
        "entries": entries(model_dir, version),
        "jit": check_jit(model, model_dir, version),
        "onnx": check_onnx(model, model_dir),
        # v3 has one file (the ONNX): the policy is exercised where there are three to damage
        "damaged": damage_and_reexport(model, model_dir, version) if version < 3 else None,
        "preflight": preflight(model_dir, version),
    }


def main(tree: Path, folders: dict[int, Path]) -> None:
    """Every version's folder in one process: the official code's imports take most of the time."""
    upstream_on_path(tree)
    import cosyvoice.cli.cosyvoice as cli

    print(json.dumps({version: exercise(cli, version, folder) for version, folder in folders.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), {int(arg.split("=", 1)[0]): Path(arg.split("=", 1)[1]) for arg in sys.argv[2:]})
