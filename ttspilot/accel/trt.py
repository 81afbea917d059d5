"""ONNX -> serialized TensorRT plan with the TensorRT 10 Python API, and its validated cache entry.

`build_plan` follows the documented builder sequence: Builder -> create_network(0) (TensorRT
10 networks are always explicit batch; the EXPLICIT_BATCH flag is deprecated and ignored) ->
OnnxParser.parse_from_file -> builder config (workspace memory pool limit, FP16 flag, one
optimization profile with min/opt/max per dynamic input, optional timing cache, progress
monitor) -> build_serialized_network -> atomic write. `tensorrt` is imported lazily and can
be injected (tests pass a fake). The shape profile is a parameter so the CosyVoice flow
decoder estimator (x, mask, mu, cond with a dynamic last dim) uses the same builder.

`half_io` makes the network's FLOAT inputs and outputs HALF, as upstream CosyVoice's
convert_onnx_to_trt does for its FP16 plans (its TrtContextWrapper then binds half tensors). The
TensorRT 10 developer guide ("I/O Formats") documents exactly this: assign `ITensor.dtype` on a
network input or output (`network.get_input(0).dtype = trt.DataType.HALF`); on any other tensor it
is ignored, and the NvInfer.h setType note says the type stays unchanged where it is not allowed,
so the builder reads it back. It works in the default, weakly typed network (no STRONGLY_TYPED
creation flag: a strongly typed network takes its types from the ONNX and forbids the FP16 builder
flag). TensorRT 11 makes every network strongly typed, removes BuilderFlag.FP16 and fixes tensor
types once parsed; there an FP16 or half-I/O build is refused with that reason.

`ensure_plan` keys the plan by TensorRT version, GPU compute capability, precision, I/O type,
source sha256 and profile; a plan from another GPU, TensorRT or model is rebuilt, never loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ttspilot.accel.cache import CacheKey, CacheOutcome, atomic_write_bytes, ensure_entry
from ttspilot.accel.fingerprint import FileHasher, hasher_for, sm_tag
from ttspilot.accel.providers import DEFAULT_TRT_WORKSPACE_BYTES, ShapeProfile, profile_fields, validate_profile
from ttspilot.hardware import tensorrt_wheel

log = logging.getLogger("ttspilot.accel")

KIND = "trt-plan"
PLAN_FILE = "model.plan"


class PlanBuildError(RuntimeError):
    """A TensorRT plan could not be built; the message is one line an operator can act on."""


class BuildProgress(Protocol):
    """Receives TensorRT's builder progress (IProgressMonitor), possibly from several threads."""

    def phase_start(self, name: str, parent: str | None, steps: int) -> None: ...

    def step(self, name: str, step: int) -> bool:
        """Return False to cancel the build."""
        ...

    def phase_finish(self, name: str) -> None: ...


def load_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise PlanBuildError(
            f"the tensorrt Python package is not installed (pip install {tensorrt_wheel()}); TensorRT plans cannot be built"
        ) from exc
    return tensorrt


def progress_monitor(trt: Any, sink: BuildProgress):
    """A trt.IProgressMonitor forwarding to `sink`; never lets an exception escape into TensorRT."""

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                with self._lock:
                    sink.phase_start(phase_name, parent_phase, num_steps)
            except Exception:
                log.debug("progress sink failed in phase_start", exc_info=True)

        def step_complete(self, phase_name, step):
            try:
                with self._lock:
                    return bool(sink.step(phase_name, step))
            except Exception:
                log.debug("progress sink failed in step_complete", exc_info=True)
                return True

        def phase_finish(self, phase_name):
            try:
                with self._lock:
                    sink.phase_finish(phase_name)
            except Exception:
                log.debug("progress sink failed in phase_finish", exc_info=True)

    return _Monitor()


def _check_profile_against_network(network: Any, profiles: ShapeProfile, onnx_path: Path) -> None:
    inputs = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        inputs[tensor.name] = tuple(int(d) for d in tensor.shape)
    unknown = [name for name in profiles if name not in inputs]
    if unknown:
        raise PlanBuildError(
            f"profile names inputs {unknown} that {onnx_path.name} does not have (inputs: {', '.join(inputs)})"
        )
    missing = [name for name, shape in inputs.items() if any(d < 0 for d in shape) and name not in profiles]
    if missing:
        raise PlanBuildError(f"dynamic inputs {missing} of {onnx_path.name} have no min/opt/max shapes in the profile")
    for name, shapes in profiles.items():
        declared = inputs[name]
        for shape in shapes:
            if len(shape) != len(declared) or any(d >= 0 and int(s) != d for s, d in zip(shape, declared)):
                raise PlanBuildError(
                    f"profile shape {tuple(shape)} for {name!r} does not fit its declared shape {declared}"
                )


def _make_io_half(trt: Any, network: Any) -> None:
    """FLOAT network inputs and outputs become HALF (upstream sets every I/O tensor; the estimator's are all FLOAT)."""
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    tensors += [network.get_output(i) for i in range(network.num_outputs)]
    for tensor in tensors:
        if tensor.dtype != trt.DataType.FLOAT:
            continue
        tensor.dtype = trt.DataType.HALF
        if tensor.dtype != trt.DataType.HALF:
            raise PlanBuildError(
                f"TensorRT {trt.__version__} kept {tensor.name!r} as {tensor.dtype}: half I/O cannot be set on this "
                "network (TensorRT 11 fixes tensor types when parsing; the ONNX itself must declare FP16 I/O)"
            )


@dataclass(frozen=True)
class PlanBuild:
    path: Path
    seconds: float
    size_bytes: int
    fp16: bool
    fast_fp16: bool  # the GPU reports fast native FP16
    tensorrt_version: str
    half_io: bool = False


def build_plan(
    onnx_path: Path,
    plan_path: Path,
    profiles: ShapeProfile,
    *,
    fp16: bool,
    half_io: bool = False,
    workspace_bytes: int = DEFAULT_TRT_WORKSPACE_BYTES,
    progress: BuildProgress | None = None,
    timing_cache_path: Path | None = None,
    trt: Any = None,
) -> PlanBuild:
    """Build a serialized TensorRT plan for `onnx_path` and write it atomically to `plan_path`.

    `profiles`: input name -> (min, opt, max) shape, one optimization profile covering every
    dynamic input. `half_io`: FLOAT inputs and outputs are bound as HALF (module docstring).
    On any failure no plan file is left behind and PlanBuildError says why.
    """
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    validate_profile(profiles)
    trt = trt if trt is not None else load_tensorrt()
    started = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].strip().splitlines()[0] if errors else "no error message"
        raise PlanBuildError(f"TensorRT could not parse {onnx_path.name}: {first} ({len(errors)} error(s))")
    _check_profile_against_network(network, profiles, onnx_path)
    if half_io:
        _make_io_half(trt, network)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    fast_fp16 = bool(getattr(builder, "platform_has_fast_fp16", False))
    if fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise PlanBuildError(
                f"TensorRT {trt.__version__} has no FP16 builder flag (TensorRT 11 builds strongly typed networks "
                "only); build an FP32 plan, or install TensorRT 10"
            )
        if not fast_fp16:
            log.warning("TensorRT: this GPU reports no fast FP16; building FP16 anyway as asked")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profiles.items():
        profile.set_shape(name, tuple(int(d) for d in low), tuple(int(d) for d in opt), tuple(int(d) for d in high))
    if config.add_optimization_profile(profile) < 0:
        raise PlanBuildError(f"TensorRT rejected the optimization profile for {onnx_path.name}: {dict(profiles)}")

    timing_cache = None
    if timing_cache_path is not None:
        blob = b""
        if Path(timing_cache_path).is_file():
            blob = Path(timing_cache_path).read_bytes()
        timing_cache = config.create_timing_cache(blob)
        if timing_cache is None and blob:
            log.info("TensorRT: timing cache %s unreadable; starting a new one", timing_cache_path)
            timing_cache = config.create_timing_cache(b"")
        if timing_cache is not None:
            config.set_timing_cache(timing_cache, ignore_mismatch=False)

    monitor = None
    if progress is not None and hasattr(trt, "IProgressMonitor"):
        monitor = progress_monitor(trt, progress)
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise PlanBuildError(
            f"TensorRT failed to build a plan for {onnx_path.name} (see the TensorRT log above; "
            "a larger workspace or a narrower profile may help)"
        )
    data = memoryview(serialized)
    atomic_write_bytes(plan_path, data)
    if timing_cache_path is not None and timing_cache is not None:
        try:
            atomic_write_bytes(Path(timing_cache_path), memoryview(config.get_timing_cache().serialize()))
        except Exception as exc:  # noqa: BLE001  (the timing cache only speeds up later builds)
            log.info("TensorRT: timing cache not saved at %s: %s", timing_cache_path, exc)
    del monitor  # TensorRT objects referencing it are done
    return PlanBuild(
        plan_path, time.perf_counter() - started, data.nbytes, fp16, fast_fp16, str(trt.__version__), half_io
    )


def plan_key(
    onnx_path: Path,
    source_sha256: str,
    *,
    tensorrt_version: str,
    compute_capability: str,
    fp16: bool,
    profiles: ShapeProfile,
    half_io: bool = False,
) -> CacheKey:
    if not compute_capability:
        raise PlanBuildError("GPU compute capability unknown; a plan must be named for the GPU it was built on")
    precision = "fp16" if fp16 else "fp32"
    fields = {
        "format": 1,
        "source_sha256": source_sha256,
        "tensorrt": str(tensorrt_version),
        "compute_capability": str(compute_capability),
        "precision": precision,
        "io": "half" if half_io else "onnx",  # the I/O types the plan binds: HALF, or the ONNX's own
        "profile": profile_fields(profiles),
    }
    tags = (
        f"trt{tensorrt_version}",
        sm_tag(compute_capability),
        precision,
        *(("halfio",) if half_io else ()),
        f"src{source_sha256[:8]}",
    )
    return CacheKey(KIND, Path(onnx_path).name.removesuffix(".onnx"), fields, tags)


def ensure_plan(
    onnx_path: Path,
    cache_dir: Path,
    profiles: ShapeProfile,
    *,
    fp16: bool,
    half_io: bool = False,
    workspace_bytes: int = DEFAULT_TRT_WORKSPACE_BYTES,
    device_id: int = 0,
    compute_capability: str | None = None,
    force: bool = False,
    progress: BuildProgress | None = None,
    trt: Any = None,
    hasher: FileHasher | None = None,
) -> CacheOutcome[PlanBuild]:
    """A valid cached plan (`outcome.path / PLAN_FILE`) for this GPU, TensorRT, precision, I/O type, model, profile."""
    trt = trt if trt is not None else load_tensorrt()
    if compute_capability is None:
        from ttspilot.accel.gpu import detect_gpu

        device = detect_gpu().device(device_id)
        compute_capability = device.compute_capability if device else None
    hasher = hasher or hasher_for(cache_dir)
    key = plan_key(
        onnx_path,
        hasher.sha256(Path(onnx_path)),
        tensorrt_version=str(trt.__version__),
        compute_capability=compute_capability,
        fp16=fp16,
        profiles=profiles,
        half_io=half_io,
    )
    timing = Path(cache_dir) / KIND / f"timing-trt{trt.__version__}-{sm_tag(compute_capability)}.cache"

    def build(staging: Path) -> PlanBuild:
        return build_plan(
            onnx_path,
            staging / PLAN_FILE,
            profiles,
            fp16=fp16,
            half_io=half_io,
            workspace_bytes=workspace_bytes,
            progress=progress,
            timing_cache_path=timing,
            trt=trt,
        )

    return ensure_entry(
        cache_dir,
        key,
        build,
        hasher,
        force=force,
        needed_bytes=int(Path(onnx_path).stat().st_size * 2) + (64 << 20),
        extra_manifest={"source": str(onnx_path)},
    )


def profile_from_ranges(
    dims: Mapping[str, Sequence[int | tuple[int, int, int]]],
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Profile from per-dimension specs: an int is a fixed dim, a (min, opt, max) tuple a dynamic one.

    e.g. {"x": [1, 80, (4, 500, 3000)], "t": [1]} -> x: (1,80,4)/(1,80,500)/(1,80,3000), t: (1,)x3.
    """
    profile = {}
    for name, spec in dims.items():
        shapes = ([], [], [])
        for dim in spec:
            values = dim if isinstance(dim, tuple) else (dim, dim, dim)
            for which in range(3):
                shapes[which].append(int(values[which]))
        profile[name] = tuple(tuple(s) for s in shapes)
    return profile
