"""Pure decisions for ONNX Runtime sessions: provider list and options, shape profiles, session settings.

Nothing here touches a GPU or a file, so tests assert these dictionaries exactly. Option names
follow the ONNX Runtime TensorRT and CUDA execution provider documentation; values are strings
(ONNX Runtime's Python binding passes every provider option to C++ as a string).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ttspilot.config import OptimizationConfig

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
GPU_PROVIDERS = (TRT, CUDA)

Shape = tuple[int, ...]
# input name -> (min, opt, max) shapes of one TensorRT optimization profile
ShapeProfile = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]

DEFAULT_TRT_WORKSPACE_BYTES = 2 << 30
# Piper splits text into sentences before synthesis; 1024 phoneme ids (pads included) is a long sentence.
PIPER_MAX_PHONEMES = 1024
PIPER_OPT_PHONEMES = 256


def profile_fields(profile: ShapeProfile) -> dict[str, list[list[int]]]:
    """A shape profile as plain JSON lists, for cache keys and manifests."""
    return {name: [[int(d) for d in shape] for shape in shapes] for name, shapes in profile.items()}


def _flag(value: bool) -> str:
    return "True" if value else "False"


def format_shapes(profile: ShapeProfile, which: int) -> str:
    """`input:1x1,input_lengths:1` — the trt_profile_*_shapes syntax; which: 0 min, 1 opt, 2 max."""
    parts = []
    for name, shapes in profile.items():
        dims = [int(d) for d in shapes[which]]
        parts.append(f"{name}:{'x'.join(str(d) for d in dims)}")
    return ",".join(parts)


def validate_profile(profile: ShapeProfile) -> None:
    for name, shapes in profile.items():
        if len(shapes) != 3:
            raise ValueError(f"profile for {name!r} needs (min, opt, max) shapes")
        low, opt, high = (tuple(int(d) for d in s) for s in shapes)
        if not (len(low) == len(opt) == len(high)):
            raise ValueError(f"profile for {name!r}: min/opt/max ranks differ: {low} {opt} {high}")
        if any(d < 0 for d in low) or not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            raise ValueError(f"profile for {name!r} must satisfy 0 <= min <= opt <= max per dim: {low} {opt} {high}")


def piper_shape_profile(
    input_names: Sequence[str],
    *,
    max_phonemes: int = PIPER_MAX_PHONEMES,
    opt_phonemes: int = PIPER_OPT_PHONEMES,
    max_batch: int = 1,
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """TensorRT profile for a Piper VITS voice: `input` [batch, phonemes], `input_lengths` [batch], `sid` [batch].

    `scales` has a fixed shape [3] and needs no profile.
    """
    opt_phonemes = min(opt_phonemes, max_phonemes)
    profile: dict[str, tuple[Shape, Shape, Shape]] = {
        "input": ((1, 1), (1, opt_phonemes), (max_batch, max_phonemes)),
        "input_lengths": ((1,), (1,), (max_batch,)),
    }
    if "sid" in input_names:
        profile["sid"] = ((1,), (1,), (max_batch,))
    missing = [name for name in profile if name not in input_names]
    if missing:
        raise ValueError(f"not a Piper voice: inputs {list(input_names)} lack {missing}")
    return profile


def tensorrt_options(
    *,
    device_id: int,
    fp16: bool,
    engine_cache_path: str,
    timing_cache_path: str,
    profile: ShapeProfile,
    workspace_bytes: int = DEFAULT_TRT_WORKSPACE_BYTES,
) -> dict[str, str]:
    """TensorRT execution provider options: engine + timing cache on disk, one explicit shape profile.

    With min/opt/max shapes for every dynamic input, the engine is built when the session is
    created (not at the first request) and never rebuilt for a new input length inside the range.
    """
    validate_profile(profile)
    options = {
        "device_id": str(device_id),
        "trt_fp16_enable": _flag(fp16),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": engine_cache_path,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": timing_cache_path,
        "trt_max_workspace_size": str(int(workspace_bytes)),
    }
    if profile:
        options["trt_profile_min_shapes"] = format_shapes(profile, 0)
        options["trt_profile_opt_shapes"] = format_shapes(profile, 1)
        options["trt_profile_max_shapes"] = format_shapes(profile, 2)
    return options


def cuda_options(*, device_id: int, gpu_mem_limit: int | None = None) -> dict[str, str]:
    """CUDA execution provider options.

    kSameAsRequested keeps the arena from doubling past what pooled sessions need;
    HEURISTIC conv search avoids a cuDNN benchmark for every new sentence length (VITS
    inputs change length with every request).
    """
    options = {
        "device_id": str(device_id),
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": "True",
    }
    if gpu_mem_limit is not None:
        options["gpu_mem_limit"] = str(int(gpu_mem_limit))
    return options


def unavailable_reason(provider: str, available: Sequence[str]) -> str:
    if CUDA not in available and TRT not in available:
        return f"{provider} not available in this onnxruntime build (CPU package installed; install onnxruntime-gpu)"
    if provider == TRT:
        return f"{TRT} not available in this onnxruntime build (available: {', '.join(available)})"
    return f"{provider} not available in this onnxruntime build (available: {', '.join(available)})"


@dataclass(frozen=True)
class ProviderPlan:
    """Providers to request, in priority order, and why any the tier wanted were left out."""

    providers: list[tuple[str, dict[str, str]]]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.providers]

    @property
    def device(self) -> str:
        return "cuda" if any(name in GPU_PROVIDERS for name in self.names) else "cpu"


def plan_providers(
    config: OptimizationConfig,
    available: Sequence[str],
    *,
    trt: Mapping[str, str] | None = None,
    cuda: Mapping[str, str] | None = None,
) -> ProviderPlan:
    """TRT -> CUDA -> CPU as the tier's flags ask, keeping only what this build offers.

    `trt` and `cuda` are the option dicts (from `tensorrt_options` / `cuda_options`).
    """
    providers: list[tuple[str, dict[str, str]]] = []
    skipped: dict[str, str] = {}
    if config.device == "cuda" and config.load_trt:
        if TRT in available:
            providers.append((TRT, dict(trt or {})))
        else:
            skipped[TRT] = unavailable_reason(TRT, available)
    if config.device == "cuda":
        if CUDA in available:
            providers.append((CUDA, dict(cuda or {})))
        else:
            skipped[CUDA] = unavailable_reason(CUDA, available)
    providers.append((CPU, {}))
    return ProviderPlan(providers, skipped)


@dataclass(frozen=True)
class SessionSettings:
    """The SessionOptions fields we set, as plain data so tests can compare them."""

    graph_optimization_level: str  # ORT_DISABLE_ALL | ORT_ENABLE_BASIC | ORT_ENABLE_EXTENDED | ORT_ENABLE_ALL
    intra_op_num_threads: int
    inter_op_num_threads: int = 1
    enable_mem_pattern: bool = True
    enable_mem_reuse: bool = True
    optimized_model_filepath: str | None = None


def session_settings(
    *,
    device: str,
    threads: int,
    stage: str,
    optimized_model_filepath: str | None = None,
) -> SessionSettings:
    """Session options per device and stage.

    stage: "online" (optimize while loading the source graph), "build" (optimize and save the
    graph to `optimized_model_filepath`), "cached" (load a graph optimized ahead of time: do not
    optimize again).

    On the CPU, memory reuse planning is off: for the Piper VITS graph (2,500 nodes) the
    allocation planner takes ~0.8 s of a ~1.1 s session load, while inference time and peak
    memory were the same with and without it (measured with dynamic lengths 50-1000 phonemes,
    where memory patterns cannot apply either). GPU sessions keep ONNX Runtime's defaults.
    """
    if stage not in ("online", "build", "cached"):
        raise ValueError(f"unknown stage {stage!r}")
    if stage == "build" and not optimized_model_filepath:
        raise ValueError("the build stage needs optimized_model_filepath")
    level = "ORT_DISABLE_ALL" if stage == "cached" else "ORT_ENABLE_ALL"
    on_cpu = device == "cpu"
    return SessionSettings(
        graph_optimization_level=level,
        intra_op_num_threads=threads,
        enable_mem_pattern=not on_cpu,
        enable_mem_reuse=not on_cpu,
        optimized_model_filepath=optimized_model_filepath if stage == "build" else None,
    )


def apply_settings(settings: SessionSettings, options) -> None:
    """Copy `settings` onto an onnxruntime.SessionOptions."""
    import onnxruntime as ort

    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, settings.graph_optimization_level)
    options.intra_op_num_threads = settings.intra_op_num_threads
    options.inter_op_num_threads = settings.inter_op_num_threads
    options.enable_mem_pattern = settings.enable_mem_pattern
    options.enable_mem_reuse = settings.enable_mem_reuse
    if settings.optimized_model_filepath:
        options.optimized_model_filepath = settings.optimized_model_filepath
