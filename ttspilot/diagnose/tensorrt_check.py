"""TensorRT: import, version, builder creation, a tiny engine build, and the GPU's compute capability.

A builder that cannot start logs "Unable to determine GPU memory usage" and "CUDA initialization
failure with error: N" and then `trt.Builder(...)` raises (pybind11 "factory function returned
nullptr"). The number is the CUDA runtime error and names the cause: 35 the driver is older than
the CUDA runtime TensorRT was built with, 100 no GPU is visible (container without --gpus,
CUDA_VISIBLE_DEVICES empty), 222 a driver too old for the PTX, 999 a wedged driver.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from ttspilot.diagnose.capture import capture_native_stderr
from ttspilot.diagnose.cuda import driver_fix
from ttspilot.diagnose.libraries import version_tuple
from ttspilot.diagnose.nvidia import HIDING_VALUES
from ttspilot.diagnose.onnxruntime_check import explain_failure
from ttspilot.diagnose.result import Finding, failed, merge, passed, skipped, warned
from ttspilot.hardware import GpuInfo, HardwareProfile, tensorrt_wheel

# Lowest compute capability per TensorRT release line, newest first: 10.5 removed Volta (7.0),
# 10.0 deprecated it, 9.0 removed Maxwell (5.x), 8.6 removed Kepler (3.x).
TRT_MIN_CC_SINCE = (((10, 5), (7, 5)), ((9, 0), (6, 0)), ((8, 6), (5, 0)), ((0,), (3, 5)))
# Newest architectures and the first TensorRT that builds for them: Blackwell (10.x, 12.x) 10.8,
# Hopper (9.0) and Ada (8.9) 8.5.
TRT_FIRST_FOR_CC = (((10, 0), (10, 8)), ((8, 9), (8, 5)))

CUDA_INIT_CAUSES = {
    35: "the NVIDIA driver is older than the CUDA runtime this TensorRT was built with (cudaErrorInsufficientDriver)",
    100: "CUDA sees no GPU (cudaErrorNoDevice)",
    222: "the NVIDIA driver is too old for this TensorRT's PTX code (cudaErrorUnsupportedPtxVersion)",
    804: "CUDA forward-compatibility libraries are in use on a GPU that does not support them",
    999: "the driver is in a bad state (cudaErrorUnknown), often after suspend/resume or a crashed GPU process",
    3: "the CUDA driver failed to initialise (cudaErrorInitializationError)",
}


def cc_supported(trt_version: str, cc: tuple[int, int]) -> str | None:
    """Why TensorRT `trt_version` cannot build for compute capability `cc`, or None when it can."""
    version = version_tuple(trt_version)
    minimum = next(low for since, low in TRT_MIN_CC_SINCE if version >= since)
    cc_text = f"{cc[0]}.{cc[1]}"
    if cc < minimum:
        return (f"TensorRT {trt_version} supports compute capability >= {minimum[0]}.{minimum[1]}, "
                f"the GPU has {cc_text}")
    for first_cc, first_trt in TRT_FIRST_FOR_CC:
        if cc >= first_cc and version < first_trt:
            return f"compute capability {cc_text} needs TensorRT >= {first_trt[0]}.{first_trt[1]}"
    return None


def _environment_cause(environ: dict[str, str], device_files: bool) -> tuple[str, str] | None:
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip().lower() in HIDING_VALUES:
        return (f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU",
                "unset CUDA_VISIBLE_DEVICES (or set it to a GPU index, e.g. CUDA_VISIBLE_DEVICES=0)")
    if not device_files:
        return ("no /dev/nvidia* device files: the container was started without GPUs",
                "start the container with --gpus all (NVIDIA Container Toolkit) or mount /dev/nvidia*")
    return None


def explain_builder_failure(messages: str, *, profile: HardwareProfile, trt_cuda_major: int | None,
                            environ: dict[str, str], device_files: bool) -> tuple[str, str]:
    """(cause, fix) for a TensorRT builder that could not be created, from its log messages.

    The CUDA error code decides when TensorRT logged one; without it, "Unable to determine GPU
    memory usage" is matched against what this machine shows (GPUs hidden, driver older than
    TensorRT's CUDA), and otherwise the known causes are listed.
    """
    environment = _environment_cause(environ, device_files)
    match = re.search(r"CUDA initialization failure with error:?\s*(\d+)", messages)
    code = int(match.group(1)) if match else None
    driver = profile.cuda_driver_version
    driver_major = version_tuple(driver)[0] if driver else None
    if code is None and "Unable to determine GPU memory usage" in messages:
        if environment is not None:
            code = 100
        elif driver_major and trt_cuda_major and driver_major < trt_cuda_major:
            code = 35
    if code == 35:
        needs = f" (driver supports CUDA {driver}, this TensorRT needs CUDA {trt_cuda_major})" \
            if driver and trt_cuda_major else ""
        older = f"pip install tensorrt-cu{driver_major}" if driver_major else "a TensorRT for your driver's CUDA"
        return (CUDA_INIT_CAUSES[35] + needs,
                f"{driver_fix(trt_cuda_major or 12)}; or install the TensorRT build for the driver's CUDA: {older}")
    if code == 100:
        cause, fix = environment or ("", "check nvidia-smi; in a container run with --gpus all; unset a "
                                     "CUDA_VISIBLE_DEVICES that names no GPU")
        return CUDA_INIT_CAUSES[100] + (f": {cause}" if cause else ""), fix
    if code == 222:
        return CUDA_INIT_CAUSES[222], driver_fix(trt_cuda_major or 12)
    if code == 804:
        return (CUDA_INIT_CAUSES[804], "remove the cuda-compat libraries from LD_LIBRARY_PATH "
                                       "(e.g. /usr/local/cuda/compat) or upgrade the driver instead")
    if code == 999:
        return CUDA_INIT_CAUSES[999], "sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm (or reboot)"
    if code is not None:
        return (CUDA_INIT_CAUSES.get(code, f"CUDA runtime error {code}"),
                "run nvidia-smi and a CUDA sample (or torch.cuda.is_available()) to see CUDA's own error")
    if "Unable to determine GPU memory usage" in messages:
        return ("TensorRT could not initialise CUDA ('Unable to determine GPU memory usage'); known causes: "
                "a driver older than TensorRT's CUDA runtime, no GPU visible in the container, "
                "CUDA_VISIBLE_DEVICES empty",
                "compare `nvidia-smi` (driver CUDA version) with the tensorrt-cuXX package; run the container "
                "with --gpus all; unset CUDA_VISIBLE_DEVICES")
    first = next((line for line in messages.splitlines() if line.strip()), "no message from TensorRT")
    wheel = f"tensorrt-cu{trt_cuda_major}" if trt_cuda_major else tensorrt_wheel()
    return first[:300], f"pip install --force-reinstall {wheel}"


def _recording_logger(trt: Any) -> Any:
    """A trt.ILogger keeping warnings and errors (severity <= WARNING) as text."""

    class Recorder(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity, msg):
            try:
                level = int(severity)
            except (TypeError, ValueError):
                level = 0
            if level <= 2:
                self.messages.append(str(msg))

    return Recorder()


def build_tiny_engine(trt: Any, builder: Any, logger: Any) -> bytes | None:
    """A one-layer (ReLU) network through the network API: enough to prove kernels build and load here."""
    # TensorRT 10 networks are always explicit batch; 8.x must ask for it.
    flags = 0 if version_tuple(trt.__version__) >= (10,) else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    tensor = network.add_input("x", trt.float32, (1, 8))
    relu = network.add_activation(tensor, trt.ActivationType.RELU)
    output = relu.get_output(0)
    output.name = "y"
    network.mark_output(output)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 64 << 20)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        return None
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    return bytes(memoryview(plan)) if engine is not None else None


def load_tensorrt() -> tuple[Any, str | None, bool]:
    """(module, import error text, installed)."""
    try:
        installed = importlib.util.find_spec("tensorrt") is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        return None, None, False
    with capture_native_stderr() as captured:
        try:
            import tensorrt
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            tensorrt = None
    if tensorrt is None:
        return None, "\n".join(filter(None, [error, captured.text])), True
    return tensorrt, None, True


def _gpu_findings(trt_version: str, gpus: tuple[GpuInfo, ...]) -> list[Finding]:
    found = []
    for gpu in gpus:
        why = cc_supported(trt_version, gpu.compute_capability)
        if why:
            fix = (f"install a TensorRT that supports it (pip install -U {tensorrt_wheel()})" if "needs TensorRT" in why
                   else "use the jit tiers on this GPU, or install a TensorRT < 10.5 for Volta")
            found.append(failed(f"GPU {gpu.index} ({gpu.name}): {why}", fix))
    return found


def check_tensorrt(profile: HardwareProfile, trt: Any = None, *, engine: str = "piper",
                   trt_cuda_major: int | None = None, environ: dict[str, str] | None = None,
                   device_files: bool | None = None) -> Finding:
    environ = dict(os.environ) if environ is None else environ
    device_files = Path("/dev/nvidiactl").exists() if device_files is None else device_files
    if trt is None:
        trt, error, installed = load_tensorrt()
        if not installed:
            if not profile.gpus:
                return skipped("TensorRT not installed (and no GPU here)", "nothing to fix for the cpu tier")
            if engine == "cosyvoice":
                return warned("the tensorrt package is not installed: CosyVoice's TensorRT tiers cannot run",
                              f"pip install {tensorrt_wheel()}")
            return skipped("the tensorrt Python package is not installed; Piper uses ONNX Runtime's TensorRT "
                           "provider instead (see ort_tensorrt)",
                           f"nothing to fix for Piper; CosyVoice needs: pip install {tensorrt_wheel()}")
        if trt is None:
            cause, fix = explain_failure(error or "")
            return failed(f"tensorrt does not import: {cause}", fix, error=error)
    version = str(trt.__version__)
    data: dict[str, Any] = {"version": version}
    if not profile.gpus:
        return skipped(f"TensorRT {version} imports; no GPU, so no builder was created",
                       "nothing to fix for the cpu tier", **data)
    parts = _gpu_findings(version, profile.gpus)
    logger = _recording_logger(trt)
    with capture_native_stderr() as captured:
        try:
            builder = trt.Builder(logger)
        except Exception as exc:  # pybind11 raises TypeError when the builder factory returns nullptr
            builder, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = None if builder is not None else "trt.Builder returned None"
    messages = "\n".join([*logger.messages, captured.text, error or ""]).strip()
    data["messages"] = logger.messages[-20:]
    if builder is None:
        cause, fix = explain_builder_failure(messages, profile=profile, trt_cuda_major=trt_cuda_major,
                                             environ=environ, device_files=device_files)
        return merge([failed(f"TensorRT {version}: the builder could not be created: {cause}", fix, **data), *parts])
    with capture_native_stderr() as captured:
        try:
            plan = build_tiny_engine(trt, builder, logger)
            error = None if plan is not None else "build_serialized_network returned None"
        except Exception as exc:
            plan, error = None, f"{type(exc).__name__}: {exc}"
    if plan is None:
        last = next((m for m in reversed(logger.messages) if m.strip()), captured.text or error or "")
        return merge([failed(f"TensorRT {version}: builder created, but a one-layer engine did not build: "
                             f"{(error or '')} {last[:300]}".strip(),
                             "check free GPU memory (nvidia-smi) and that the tensorrt-cuXX package matches the "
                             "driver's CUDA major", **data), *parts])
    data["tiny_engine_bytes"] = len(plan)
    return merge([passed(f"TensorRT {version}: builder created, one-layer engine built and deserialised "
                         f"({len(plan)} bytes)", **data), *parts])
