"""A fake of the pynvml module surface `ttspilot.hardware.probe` uses, so GPU probing is tested without a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from ttspilot.hardware import GB


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError; the subclasses mirror pynvml's generated ones by name."""


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class NVMLError_NoPermission(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


@dataclass
class FakeGpu:
    name: str | bytes
    total_gb: float
    free_gb: float
    compute_capability: tuple[int, int]
    lost: bool = False  # every query on it raises NVMLError_GpuIsLost


class FakeNvml:
    """Configurable GPUs, driver and CUDA versions, and an optional error raised by nvmlInit.

    `calls` records the NVML entry points in call order, so tests can check nvmlShutdown.
    """

    NVMLError = NVMLError
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_GpuIsLost = NVMLError_GpuIsLost

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        init_error: NVMLError | None = None,
        driver: str = "550.54.15",
        cuda_version: int = 12040,
        cuda_v2_error: NVMLError | None = None,
    ):
        self.gpus = gpus or []
        self.init_error = init_error
        self.driver = driver
        self.cuda_version = cuda_version
        self.cuda_v2_error = cuda_v2_error
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.calls.append("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self.calls.append("nvmlSystemGetCudaDriverVersion_v2")
        if self.cuda_v2_error is not None:
            raise self.cuda_v2_error
        return self.cuda_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self.calls.append("nvmlSystemGetCudaDriverVersion")
        return self.cuda_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:
        return self._alive(handle).name

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> SimpleNamespace:
        gpu = self._alive(handle)
        total, free = round(gpu.total_gb * GB), round(gpu.free_gb * GB)
        return SimpleNamespace(total=total, free=free, used=total - free)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        return self._alive(handle).compute_capability

    @staticmethod
    def _alive(handle: FakeGpu) -> FakeGpu:
        if handle.lost:
            raise NVMLError_GpuIsLost("GPU is lost")
        return handle
