"""How a tier maps onto CosyVoice's own options and files, per version (docs/architecture.md, "CosyVoice acceleration").

Pure: neither torch nor the official code is imported, so the launcher's dry run, precompile --list
and the benchmark name the options and files without loading a model. The names are upstream's:
its model classes open `<model_dir>/<module>.<fp16|fp32>.zip` for JIT, build and load
`flow.decoder.estimator.<fp16|fp32>.mygpu.plan` from `flow.decoder.estimator.fp32.onnx` for
TensorRT, and write `<model_dir>/vllm` for vLLM.

| version | load_jit modules                           | load_trt | fp16 | load_vllm |
|---------|--------------------------------------------|----------|------|-----------|
| 1       | llm.text_encoder, llm.llm, flow.encoder    | yes      | yes  | no        |
| 2       | flow.encoder                               | yes      | yes  | yes       |
| 3       | none: CosyVoice3 takes no load_jit         | yes      | yes  | yes       |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ttspilot.config import OptimizationConfig

JIT_MODULES: dict[int, tuple[str, ...]] = {
    1: ("llm.text_encoder", "llm.llm", "flow.encoder"),
    2: ("flow.encoder",),
    3: (),
}
# Attributes upstream's export_jit keeps through torch.jit.freeze: the v1 LLM is called chunk by chunk.
PRESERVED_ATTRS: dict[str, tuple[str, ...]] = {"llm.llm": ("forward_chunk",)}
ESTIMATOR = "flow.decoder.estimator"
ESTIMATOR_ONNX = f"{ESTIMATOR}.fp32.onnx"  # upstream exports FP32 only; FP16 plans are built from it
VLLM_FOLDER = "vllm"
# Upstream's get_trt_kwargs (identical in both trees): the four dynamic inputs, (min, opt, max) frames.
# `t` (2,) and `spks` (2, 80) are fixed in the export, so the profile leaves them out.
ESTIMATOR_FRAMES = (4, 500, 3000)
ESTIMATOR_INPUTS: dict[str, tuple[int, int]] = {"x": (2, 80), "mask": (2, 1), "mu": (2, 80), "cond": (2, 80)}

Kind = Literal["torchscript", "onnx", "trt-plan", "vllm"]


def precision(config: OptimizationConfig) -> str:
    """Upstream picks the files by its fp16 flag: `fp16` or `fp32`."""
    return "fp16" if config.fp16 else "fp32"


@dataclass(frozen=True)
class TierFile:
    """One file (or folder) a tier makes upstream open, named as upstream names it."""

    name: str  # relative to the model folder
    kind: Kind
    module: str  # the upstream module it stands for: flow.encoder, flow.decoder.estimator, llm
    precision: str
    gpu_specific: bool  # valid only on the GPU (compute capability) and library version it was built for

    def path(self, model_dir: Path) -> Path:
        return model_dir / self.name


def jit_file(module: str, precision_name: str) -> TierFile:
    return TierFile(f"{module}.{precision_name}.zip", "torchscript", module, precision_name, gpu_specific=False)


def plan_file(precision_name: str) -> TierFile:
    return TierFile(f"{ESTIMATOR}.{precision_name}.mygpu.plan", "trt-plan", ESTIMATOR, precision_name,
                    gpu_specific=True)


ONNX_FILE = TierFile(ESTIMATOR_ONNX, "onnx", ESTIMATOR, "fp32", gpu_specific=False)
VLLM_DIR = TierFile(VLLM_FOLDER, "vllm", "llm", "bf16", gpu_specific=False)


def upstream_flags(version: int, config: OptimizationConfig) -> dict[str, Any]:
    """The keyword arguments upstream's model class for `version` takes for this tier."""
    flags: dict[str, Any] = {"load_jit": config.load_jit, "load_trt": config.load_trt, "fp16": config.fp16,
                             "trt_concurrent": config.trt_concurrent}
    if version >= 3:
        del flags["load_jit"]
    if version >= 2:
        flags["load_vllm"] = config.load_vllm
    return flags


def ignored_flags(version: int, config: OptimizationConfig) -> dict[str, str]:
    """Tier flags this version has no option for, with why (reported, never silently claimed)."""
    ignored = {}
    if config.load_jit and not JIT_MODULES[version]:
        ignored["load_jit"] = f"CosyVoice{version} has no load_jit option"
    if config.load_vllm and version < 2:
        ignored["load_vllm"] = "CosyVoice v1 has no load_vllm option"
    return ignored


def tier_files(version: int, config: OptimizationConfig) -> list[TierFile]:
    """Every file the tier makes upstream open, in the order upstream opens them."""
    files: list[TierFile] = []
    if config.load_vllm and version >= 2:
        files.append(VLLM_DIR)
    if config.load_jit:
        files += [jit_file(module, precision(config)) for module in JIT_MODULES[version]]
    if config.load_trt:
        files += [ONNX_FILE, plan_file(precision(config))]
    return files


def estimator_profile(frames: tuple[int, int, int] = ESTIMATOR_FRAMES) -> dict[str, tuple[tuple[int, ...], ...]]:
    """The TensorRT optimization profile upstream builds its estimator plan with: name -> (min, opt, max)."""
    return {name: tuple((*lead, length) for length in frames) for name, lead in ESTIMATOR_INPUTS.items()}
