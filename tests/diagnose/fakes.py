"""Recorded NVML, ONNX Runtime and TensorRT behaviour, so the GPU checks are tested without a GPU.

The failure texts are the ones these libraries print on broken deployments (paraphrased, with
the parts the checks recognise kept exact: library sonames, "Unable to determine GPU memory
usage", "CUDA initialization failure with error: N", "_ARRAY_API not found").
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np

from tests.fakes_nvml import FakeGpu, FakeNvml, NVMLError
from ttspilot.diagnose.onnxruntime_check import TINY_EXPECTED, TINY_NODES
from ttspilot.hardware import GB, GpuInfo, HardwareProfile, LibraryInfo

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TRT, CUDA, CPU)

# What onnxruntime-gpu logs when the CUDA provider library cannot load cuDNN 9, then falls back to the CPU.
ORT_CUDNN9_MISSING_LOG = (
    "2025-01-01 10:00:00.000 [E:onnxruntime:Default, provider_bridge_ort.cc:1992 TryGetProviderInfo_CUDA] "
    "Failed to load library libonnxruntime_providers_cuda.so with error: libcudnn.so.9: cannot open shared object "
    "file: No such file or directory\n"
    "2025-01-01 10:00:00.001 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:965 CreateExecutionProviderInstance] "
    "Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 12.*. Please install all dependencies "
    "as mentioned in the GPU requirements page.\n"
)
# ... and when its TensorRT provider cannot find TensorRT 10.
ORT_NVINFER10_MISSING_LOG = (
    "2025-01-01 10:00:00.000 [E:onnxruntime:Default, provider_bridge_ort.cc:1992 TryGetProviderInfo_TensorRT] "
    "Failed to load library libonnxruntime_providers_tensorrt.so with error: libnvinfer.so.10: cannot open shared "
    "object file: No such file or directory\n"
    "2025-01-01 10:00:00.001 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1000 CreateExecutionProviderInstance] "
    "Failed to create TensorrtExecutionProvider. Please reference the TensorRT requirements page.\n"
)
# onnxruntime 1.18 imported with NumPy 2.
ORT_NUMPY2_IMPORT_ERROR = (
    "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.1.0 as it may crash.\n"
    "AttributeError: _ARRAY_API not found\n"
    "ImportError: numpy.core.multiarray failed to import"
)
# TensorRT's builder on a machine whose driver is older than TensorRT's CUDA runtime.
TRT_INSUFFICIENT_DRIVER = [
    (2, "Unable to determine GPU memory usage"),
    (2, "Unable to determine GPU memory usage"),
    (3, "[MemUsageChange] Init CUDA: CPU +0, GPU +0, now: CPU 12, GPU 0 (MiB)"),
    (2, "CUDA initialization failure with error: 35. Please check your CUDA installation: "
        "http://docs.nvidia.com/cuda/cuda-installation-guide-linux/index.html"),
]
TRT_NO_DEVICE = [
    (2, "Unable to determine GPU memory usage"),
    (2, "CUDA initialization failure with error: 100. Please check your CUDA installation."),
]
PYBIND_NULLPTR = "pybind11::init(): factory function returned nullptr"


def gpu_profile(name: str = "NVIDIA GeForce RTX 4090", total_gb: float = 24.0, free_gb: float = 22.0,
                cc: tuple[int, int] = (8, 9), *, providers: tuple[str, ...] = GPU_PROVIDERS,
                driver: str = "550.54.15", cuda_driver: str = "12.4", torch_cuda: str | None = None,
                tensorrt: str | None = None) -> HardwareProfile:
    return HardwareProfile(
        gpus=(GpuInfo(0, name, round(total_gb * GB), round(free_gb * GB), cc),),
        driver_version=driver,
        cuda_driver_version=cuda_driver,
        cpu_cores=8,
        ram_total=32 * GB,
        ram_available=24 * GB,
        libraries=LibraryInfo("1.20.1", providers, tensorrt, "2.3.1" if torch_cuda else None, torch_cuda),
    )


def cpu_profile() -> HardwareProfile:
    return HardwareProfile(gpu_absent_reason="NVML library not found (no NVIDIA driver installed)", cpu_cores=8,
                           ram_total=32 * GB, ram_available=24 * GB,
                           libraries=LibraryInfo("1.31.1", ("CPUExecutionProvider",)))


class NVMLError_NotFound(NVMLError):
    pass


class FakeNvmlWithProcesses(FakeNvml):
    """FakeNvml plus the process queries: `processes` maps GPU index -> [(pid, used bytes or None)]."""

    NVMLError_NotFound = NVMLError_NotFound

    def __init__(self, gpus: list[FakeGpu], processes: dict[int, list[tuple[int, int | None]]] | None = None,
                 names: dict[int, str | bytes] | None = None, **kwargs):
        super().__init__(gpus, **kwargs)
        self.processes = processes or {}
        self.names = names or {}

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        index = self.gpus.index(handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used, gpuInstanceId=0, computeInstanceId=0)
                for pid, used in self.processes.get(index, [])]

    def nvmlSystemGetProcessName(self, pid: int) -> str | bytes:
        if pid not in self.names:
            raise NVMLError_NotFound("Not Found")
        return self.names[pid]


class FakeSessionOptions:
    def __init__(self) -> None:
        self.enable_profiling = False
        self.profile_file_prefix = "onnxruntime_profile_"
        self.graph_optimization_level = None


class FakeOrtSession:
    def __init__(self, ort: FakeOrt, options: FakeSessionOptions, providers: list):
        requested = [p if isinstance(p, str) else p[0] for p in providers]
        self._ort = ort
        self._options = options
        self._active = [p for p in requested if p in ort.loads] or [CPU]
        self._executes = ort.executes or self._active[0]
        if ort.native_log:
            os.write(2, ort.native_log.encode())  # the real library logs from C++, straight to fd 2
        if ort.create_error:
            raise RuntimeError(ort.create_error)

    def get_providers(self) -> list[str]:
        return list(self._active)

    def run(self, outputs, feeds):
        assert feeds["x"].shape == (1, 8)
        return [np.zeros_like(TINY_EXPECTED) if self._ort.wrong_output else TINY_EXPECTED.copy()]

    def end_profiling(self) -> str:
        path = f"{self._options.profile_file_prefix}_fake.json"
        events = [{"cat": "Session", "name": "session_initialization", "args": {}}]
        nodes = [f"{self._executes}_TRTKernel_graph_0"] if self._executes == TRT else list(TINY_NODES)
        events += [{"cat": "Node", "name": f"{node}_kernel_time", "args": {"provider": self._executes, "op_name": "x"}}
                   for node in nodes]
        with open(path, "w") as handle:
            json.dump(events, handle)
        return path


class FakeOrt:
    """A recorded onnxruntime module: which providers it lists, which really load, which runs the nodes."""

    SessionOptions = FakeSessionOptions
    GraphOptimizationLevel = SimpleNamespace(ORT_DISABLE_ALL=0, ORT_ENABLE_BASIC=1, ORT_ENABLE_ALL=99)

    def __init__(self, *, version: str = "1.20.1", package_name: str = "onnxruntime-gpu",
                 cuda_version: str | None = "12.2", available: tuple[str, ...] = GPU_PROVIDERS,
                 loads: tuple[str, ...] | None = None, executes: str | None = None, native_log: str = "",
                 create_error: str | None = None, wrong_output: bool = False):
        self.__version__ = version
        self.package_name = package_name
        self.cuda_version = cuda_version
        self.available = available
        self.loads = available if loads is None else loads
        self.executes = executes
        self.native_log = native_log
        self.create_error = create_error
        self.wrong_output = wrong_output
        self.sessions: list[list] = []

    def get_device(self) -> str:
        return "GPU" if CUDA in self.available else "CPU"

    def get_available_providers(self) -> list[str]:
        return list(self.available)

    def InferenceSession(self, model: bytes, options: FakeSessionOptions, providers: list) -> FakeOrtSession:
        assert isinstance(model, bytes) and model
        self.sessions.append(providers)
        return FakeOrtSession(self, options, providers)


class FakeTrtTensor:
    def __init__(self, name: str):
        self.name = name


class FakeTrtNetwork:
    def __init__(self) -> None:
        self.outputs: list[FakeTrtTensor] = []

    def add_input(self, name, dtype, shape):
        return FakeTrtTensor(name)

    def add_activation(self, tensor, kind):
        return SimpleNamespace(get_output=lambda index: FakeTrtTensor("relu_out"))

    def mark_output(self, tensor) -> None:
        self.outputs.append(tensor)


class FakeTrtBuilder:
    def __init__(self, trt: FakeTensorRT):
        self.trt = trt
        self.network_flags: list[int] = []

    def create_network(self, flags: int) -> FakeTrtNetwork:
        self.network_flags.append(flags)
        return FakeTrtNetwork()

    def create_builder_config(self):
        return SimpleNamespace(set_memory_pool_limit=lambda pool, size: None)

    def build_serialized_network(self, network, config):
        for severity, message in self.trt.build_messages:
            self.trt.logger.log(severity, message)
        return None if self.trt.build_fails else b"\x00fake-plan\x00" * 8


class FakeTensorRT:
    """A recorded tensorrt module: messages its builder logs, whether creating it fails, whether a build fails."""

    class ILogger:
        def __init__(self) -> None:
            pass

    float32 = "float32"
    ActivationType = SimpleNamespace(RELU="relu")
    MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
    NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0)

    def __init__(self, version: str = "10.13.3.9", *, builder_messages=(), builder_fails: bool = False,
                 build_messages=(), build_fails: bool = False):
        self.__version__ = version
        self.builder_messages = list(builder_messages)
        self.builder_fails = builder_fails
        self.build_messages = list(build_messages)
        self.build_fails = build_fails
        self.logger = None
        self.builders: list[FakeTrtBuilder] = []

    def Builder(self, logger) -> FakeTrtBuilder:
        self.logger = logger
        for severity, message in self.builder_messages:
            logger.log(severity, message)
        if self.builder_fails:
            raise TypeError(PYBIND_NULLPTR)
        builder = FakeTrtBuilder(self)
        self.builders.append(builder)
        return builder

    def Runtime(self, logger):
        return SimpleNamespace(deserialize_cuda_engine=lambda plan: object())
