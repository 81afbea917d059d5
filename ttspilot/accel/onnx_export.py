"""A torch module exported to ONNX, checked against torch in ONNX Runtime, in a validated cache entry.

torch 2.9 made the dynamo exporter the default of `torch.onnx.export`; it needs the `onnxscript`
package (torch 2.14 without it: ModuleNotFoundError) and `dynamic_shapes` instead of
`dynamic_axes`. The export here passes `dynamo=False`: the TorchScript-based exporter the model
code's own scripts were written for (CosyVoice's `bin/export_onnx.py` with `dynamic_axes`, opset 18),
still in torch 2.14 with a DeprecationWarning, and no extra requirement.

A build fails unless ONNX Runtime (CPU) gives torch's output at two sequence lengths within the
tolerances of the model code's own check, and every axis named dynamic is symbolic in the file:
a file that traced one length into a constant is never cached.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.accel.cache import CacheKey, CacheOutcome, ensure_entry
from ttspilot.accel.fingerprint import FileHasher, hasher_for
from ttspilot.accel.torchscript import exported_module_fields, exported_module_tags, first_line, module_bytes

log = logging.getLogger("ttspilot.accel")

KIND = "onnx"
ONNX_FILE = "model.onnx"
# upstream's consistency check (torch.testing.assert_allclose in export_onnx.py)
RTOL, ATOL = 1e-2, 1e-4

InputsFor = Callable[[int], tuple[Any, ...]]  # sequence length -> example inputs, in input_names order


class OnnxExportError(RuntimeError):
    """The export failed or does not compute what the module computes; one line an operator can act on."""


@dataclass(frozen=True)
class OnnxSignature:
    """What the exported graph looks like from outside: names, dynamic axes, opset."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]  # name -> {axis: symbolic name}
    opset: int

    def fields(self) -> dict[str, Any]:
        return {"inputs": list(self.input_names), "outputs": list(self.output_names), "opset": self.opset,
                "dynamic_axes": {name: {str(axis): symbol for axis, symbol in sorted(axes.items())}
                                 for name, axes in sorted(self.dynamic_axes.items())}}


@dataclass(frozen=True)
class OnnxBuild:
    path: Path
    seconds: float
    size_bytes: int
    max_abs_diff: dict[int, float]  # sequence length -> largest |onnxruntime - torch|
    torch_version: str


@contextmanager
def _evaluating(module: Any):
    """Eval mode for the export, then the caller's mode back (upstream calls estimator.eval())."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def export_onnx(module: Any, inputs: tuple[Any, ...], path: Path, signature: OnnxSignature) -> None:
    import torch

    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (module docstring); tracer warnings name the
        # branches frozen at the example length, which the check at two other lengths covers.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")  # a Slice with steps != 1 stays a Slice
        torch.onnx.export(
            module, inputs, str(path), export_params=True, opset_version=signature.opset, do_constant_folding=True,
            input_names=list(signature.input_names), output_names=list(signature.output_names),
            dynamic_axes={name: dict(axes) for name, axes in signature.dynamic_axes.items()}, dynamo=False,
        )


def declared_shapes(path: Path) -> dict[str, tuple[int | str, ...]]:
    """Each input's and output's shape as the file declares it: ints, or the symbol of a dynamic axis."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {value.name: tuple(d.dim_param if d.HasField("dim_param") else int(d.dim_value)
                              for d in value.type.tensor_type.shape.dim)
            for value in (*graph.input, *graph.output)}


def check_dynamic_axes(path: Path, signature: OnnxSignature, name: str) -> None:
    shapes = declared_shapes(path)
    for tensor, axes in signature.dynamic_axes.items():
        shape = shapes.get(tensor)
        if shape is None:
            raise OnnxExportError(f"the ONNX export of {name} has no input or output {tensor!r} "
                                  f"(it has {', '.join(shapes)})")
        fixed = [axis for axis in axes if axis >= len(shape) or isinstance(shape[axis], int)]
        if fixed:
            raise OnnxExportError(f"the ONNX export of {name}: axis {fixed} of {tensor!r} should be dynamic, "
                                  f"the file declares {shape}")


def check_against_torch(path: Path, module: Any, inputs_for: InputsFor, lengths: Sequence[int],
                        signature: OnnxSignature, name: str) -> dict[int, float]:
    """Run the file in ONNX Runtime (CPU) and the module in torch at each length; raise when they differ."""
    import numpy as np
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    differences = {}
    for length in lengths:
        inputs = inputs_for(length)
        with torch.no_grad():
            expected = module(*inputs)
        got = session.run(None, {tensor: value.numpy() for tensor, value in zip(signature.input_names, inputs)})[0]
        expected = expected.numpy()
        if got.shape != expected.shape:
            raise OnnxExportError(f"the ONNX export of {name} at length {length}: ONNX Runtime gives shape "
                                  f"{got.shape}, torch {expected.shape}")
        differences[length] = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
            raise OnnxExportError(f"the ONNX export of {name} at length {length}: ONNX Runtime differs from torch "
                                  f"by up to {differences[length]:.3g} (rtol {RTOL}, atol {ATOL})")
    return differences


def onnx_key(name: str, source_sha256: str, *, code_sha256: str, signature: OnnxSignature,
             input_shapes: Mapping[str, Sequence[int]], torch_version: str) -> CacheKey:
    fields = {**exported_module_fields(name, source_sha256, code_sha256, torch_version), **signature.fields(),
              "input_shapes": {input_name: list(shape) for input_name, shape in input_shapes.items()}}
    tags = exported_module_tags(torch_version, f"opset{signature.opset}", source_sha256, code_sha256)
    return CacheKey(KIND, name, fields, tags)


def build_onnx(module: Any, path: Path, inputs_for: InputsFor, signature: OnnxSignature, *, name: str,
               export_length: int, check_lengths: Sequence[int]) -> OnnxBuild:
    """Export `module` (named `name` in messages) to `path`; OnnxExportError unless it computes what torch does."""
    import torch

    started = time.perf_counter()
    with _evaluating(module), torch.no_grad():
        try:
            export_onnx(module, inputs_for(export_length), path, signature)
        except Exception as exc:  # the exporter raises many types, with long messages
            raise OnnxExportError(f"torch.onnx.export failed for {name}: {first_line(exc)}") from exc
        check_dynamic_axes(path, signature, name)
        differences = check_against_torch(path, module, inputs_for, check_lengths, signature, name)
    return OnnxBuild(Path(path), time.perf_counter() - started, Path(path).stat().st_size, differences,
                     torch.__version__)


def ensure_onnx(
    module: Any,
    source_path: Path,
    cache_dir: Path,
    inputs_for: InputsFor,
    signature: OnnxSignature,
    *,
    name: str,
    code_sha256: str,
    export_length: int,
    check_lengths: Sequence[int],
    force: bool = False,
    hasher: FileHasher | None = None,
) -> CacheOutcome[OnnxBuild]:
    """A valid cached, checked ONNX export of `module` (weights from `source_path`): `outcome.path / ONNX_FILE`."""
    import torch

    hasher = hasher or hasher_for(cache_dir)
    shapes = {input_name: tuple(value.shape)
              for input_name, value in zip(signature.input_names, inputs_for(export_length))}
    key = onnx_key(name, hasher.sha256(Path(source_path)), code_sha256=code_sha256, signature=signature,
                   input_shapes=shapes, torch_version=torch.__version__)

    def build(staging: Path) -> OnnxBuild:
        return build_onnx(module, staging / ONNX_FILE, inputs_for, signature, name=name, export_length=export_length,
                          check_lengths=check_lengths)

    return ensure_entry(cache_dir, key, build, hasher, force=force, needed_bytes=2 * module_bytes(module) + (16 << 20),
                        extra_manifest={"source": str(source_path), "module_class": type(module).__name__})
