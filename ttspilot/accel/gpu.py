"""A cheap "is there a usable NVIDIA GPU" answer for cache keys and precompile, without a CUDA context.

A view of `ttspilot.hardware.probe()` reduced to what cache keys need (device count, compute
capability, ONNX Runtime's providers), plus the TensorRT library version the provider loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import lru_cache

from ttspilot.hardware import HardwareProfile, probe, tensorrt_package_version


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    compute_capability: str  # "8.9"


@dataclass(frozen=True)
class GpuPresence:
    present: bool  # NVML sees at least one NVIDIA device
    reason: str  # one line: what was found, or why not
    devices: tuple[GpuDevice, ...]
    ort_providers: tuple[str, ...]

    def device(self, index: int) -> GpuDevice | None:
        return next((d for d in self.devices if d.index == index), None)


def presence_from(profile: HardwareProfile) -> GpuPresence:
    """The cache-key view of a hardware profile: devices, their compute capability, ONNX Runtime's providers."""
    devices = tuple(
        GpuDevice(gpu.index, gpu.name, gpu.compute_capability_text) for gpu in profile.gpus
    )
    if devices:
        names = ", ".join(f"{d.index}: {d.name} (sm {d.compute_capability})" for d in devices)
        return GpuPresence(True, f"GPU present: {names}", devices, tuple(profile.libraries.ort_providers))
    reason = f"no GPU present: {profile.gpu_absent_reason or 'none found'}"
    return GpuPresence(False, reason, devices, tuple(profile.libraries.ort_providers))


@lru_cache(maxsize=1)
def detect_gpu() -> GpuPresence:
    """Probe once per process (NVML and ONNX Runtime's provider list; no CUDA context): every pooled session
    and every build asks, and a process's GPUs and libraries do not change under it."""
    return presence_from(probe())


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
    return tensorrt_package_version()
