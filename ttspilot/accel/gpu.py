"""A cheap "is there a usable NVIDIA GPU" answer for cache keys and precompile, without a CUDA context.

Deliberately small: `ttspilot.hardware.probe()` is the full probe; this module only needs
NVML (device count, compute capability), ONNX Runtime's provider list and the TensorRT
library version, each of which costs milliseconds and never initialises CUDA.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    compute_capability: str  # "8.9"
    memory_total_bytes: int

    @property
    def sm(self) -> str:
        return "sm" + self.compute_capability.replace(".", "")


@dataclass(frozen=True)
class GpuPresence:
    present: bool  # NVML sees at least one NVIDIA device
    reason: str  # one line: what was found, or why not
    devices: tuple[GpuDevice, ...]
    ort_providers: tuple[str, ...]

    def device(self, index: int) -> GpuDevice | None:
        return next((d for d in self.devices if d.index == index), None)

    def can_run(self, provider: str) -> bool:
        return self.present and provider in self.ort_providers


def _nvml_devices() -> tuple[tuple[GpuDevice, ...], str]:
    try:
        import pynvml
    except ImportError:
        return (), "nvidia-ml-py is not installed, so no GPU can be seen"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return (), f"no NVIDIA driver found (NVML: {exc})"
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            devices.append(GpuDevice(index, name, f"{major}.{minor}", int(memory)))
        return tuple(devices), ("" if devices else "NVIDIA driver loaded but no GPU is visible")
    except pynvml.NVMLError as exc:
        return (), f"NVML query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def detect_gpu() -> GpuPresence:
    import onnxruntime

    providers = tuple(onnxruntime.get_available_providers())
    devices, problem = _nvml_devices()
    if devices:
        names = ", ".join(f"{d.index}: {d.name} (sm {d.compute_capability})" for d in devices)
        return GpuPresence(True, f"GPU present: {names}", devices, providers)
    return GpuPresence(False, f"no GPU present: {problem}", devices, providers)


def _version_from_int(value: int) -> str:
    # getInferLibVersion(): major * 10000 + minor * 100 + patch for TensorRT >= 10 (and 8.x: major*1000+minor*100+patch)
    if value >= 100000:
        return f"{value // 10000}.{value // 100 % 100}.{value % 100}"
    return f"{value // 1000}.{value // 100 % 10}.{value % 100}"


@lru_cache(maxsize=1)
def tensorrt_version() -> str | None:
    """The TensorRT library version ONNX Runtime's TensorRT provider will load, without importing tensorrt."""
    for lib in ("libnvinfer.so.10", "libnvinfer.so.8", ctypes.util.find_library("nvinfer")):
        if not lib:
            continue
        try:
            handle = ctypes.CDLL(lib)
            handle.getInferLibVersion.restype = ctypes.c_int32
            return _version_from_int(int(handle.getInferLibVersion()))
        except (OSError, AttributeError):
            continue
    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu12-libs", "tensorrt-cu11", "tensorrt-libs"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
