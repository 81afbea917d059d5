"""What this machine offers for TTS: GPUs, CPU, memory and the acceleration libraries.

The launcher probes before it starts any server child, so probing must be cheap and leave
no trace: GPUs are read through NVML (nvidia-ml-py), which needs no CUDA context, and torch
and TensorRT are found through package metadata and files, never imported (importing torch
costs seconds and lets CUDA grab memory the child then cannot use; vllm and transformers are read
from package metadata alone, for the same reason). Only onnxruntime is imported, inside `probe()`,
because its provider list is only known to the module itself.

Memory is counted in GiB and written "GB", as nvidia-smi users read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform as _platform
import re
from dataclasses import asdict, dataclass, field, replace
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, NamedTuple

import psutil

GB = 2**30
CPU_FLAGS_OF_INTEREST: tuple[str, ...] = ("avx", "avx2", "avx512f", "fma", "f16c", "asimd")
TENSORRT_DISTRIBUTIONS: tuple[str, ...] = (
    "tensorrt",
    "tensorrt-cu13",
    "tensorrt-cu12",
    "tensorrt-cu11",
    "tensorrt-cu13-libs",  # the libraries alone, as ONNX Runtime's TensorRT provider loads them
    "tensorrt-cu12-libs",
    "tensorrt-cu11-libs",
    "tensorrt-libs",
)
NO_NVML_LIBRARY = "NVML library not found (no NVIDIA driver installed)"
NO_NVML_BINDINGS = "nvidia-ml-py not installed (cannot query GPUs through NVML)"
NO_GPUS = "NVML found but 0 GPUs"



def tensorrt_wheel(torch_version: str | None = None) -> str:
    """The TensorRT wheel to tell an operator to install: the one for torch's CUDA major ("2.11.0+cu130" ->
    tensorrt-cu13), because a TensorRT built for another CUDA major than torch's fails to load beside it."""
    if torch_version is None:
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            torch_version = ""
    match = re.search(r"\+cu(\d+?)\d$", torch_version)
    return f"tensorrt-cu{match.group(1)}" if match else "tensorrt-cu13 or tensorrt-cu12, for your CUDA major"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_total: int  # bytes
    memory_free: int  # bytes, at probe time
    compute_capability: tuple[int, int]

    @property
    def compute_capability_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


@dataclass(frozen=True)
class LibraryInfo:
    onnxruntime_version: str | None = None
    ort_providers: tuple[str, ...] = ()
    tensorrt_version: str | None = None  # "unknown" when the module exists without package metadata
    torch_version: str | None = None
    torch_cuda: str | None = None  # CUDA version torch was built for; None for CPU/ROCm builds
    vllm_version: str | None = None  # vLLM for CosyVoice2/3's LLM; it only works with the transformers it was
    transformers_version: str | None = None  # released with, so both are recorded


@dataclass(frozen=True)
class PlatformInfo:
    system: str = ""
    release: str = ""
    machine: str = ""
    python: str = ""


@dataclass(frozen=True)
class HardwareProfile:
    """One probe's result. `simulated` marks GPUs from --simulate_gpu: the tier policy then
    assumes the GPU libraries (CUDA and TensorRT providers) are present, so a plan shows what
    that hardware would get rather than what this machine's libraries allow."""

    gpus: tuple[GpuInfo, ...] = ()
    gpu_absent_reason: str | None = None  # set when `gpus` is empty
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # "12.4": the newest CUDA the driver supports
    cpu_model: str | None = None
    cpu_cores: int = 1  # logical
    cpu_physical_cores: int | None = None
    cpu_flags: tuple[str, ...] = ()
    ram_total: int = 0  # bytes
    ram_available: int = 0  # bytes, at probe time
    libraries: LibraryInfo = field(default_factory=LibraryInfo)
    platform: PlatformInfo = field(default_factory=PlatformInfo)
    simulated: bool = False
    notes: tuple[str, ...] = ()  # partial failures worth an operator's attention

    def fingerprint(self, extra: dict[str, Any] | None = None) -> str:
        """A short hash of what makes a benchmark result valid: GPU models, compute capabilities,
        driver, CPU and library versions, plus `extra` (engine name, model hash). Free memory and
        other per-run values are left out so the same machine keeps the same key."""
        key = {
            "gpus": [[gpu.name, list(gpu.compute_capability)] for gpu in self.gpus],
            "driver": self.driver_version,
            "cuda_driver": self.cuda_driver_version,
            "cpu": [self.cpu_model, self.cpu_cores, list(self.cpu_flags)],
            "libraries": asdict(self.libraries),
            "simulated": self.simulated,
            "extra": extra or {},
        }
        text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class _NvmlResult(NamedTuple):
    gpus: tuple[GpuInfo, ...] = ()
    absent_reason: str | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    notes: tuple[str, ...] = ()


def probe(nvml: Any | None = None) -> HardwareProfile:
    """Probe this machine. `nvml` defaults to the real pynvml module; tests pass a fake."""
    gpu_part = _probe_nvml(nvml)
    cpuinfo = read_cpuinfo()
    memory = psutil.virtual_memory()
    return HardwareProfile(
        gpus=gpu_part.gpus,
        gpu_absent_reason=gpu_part.absent_reason,
        driver_version=gpu_part.driver_version,
        cuda_driver_version=gpu_part.cuda_driver_version,
        cpu_model=parse_cpu_model(cpuinfo),
        cpu_cores=psutil.cpu_count(logical=True) or 1,
        cpu_physical_cores=psutil.cpu_count(logical=False),
        cpu_flags=parse_cpu_flags(cpuinfo),
        ram_total=memory.total,
        ram_available=memory.available,
        libraries=probe_libraries(),
        platform=PlatformInfo(_platform.system(), _platform.release(), _platform.machine(), _platform.python_version()),
        notes=gpu_part.notes,
    )


def _probe_nvml(nvml: Any | None) -> _NvmlResult:
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return _NvmlResult(absent_reason=NO_NVML_BINDINGS)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as err:
        return _NvmlResult(absent_reason=_init_failure(nvml, err))
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = _cuda_driver_version(nvml)
        count = nvml.nvmlDeviceGetCount()
        gpus, notes = [], []
        for index in range(count):
            try:
                gpus.append(_gpu_info(nvml, index))
            except nvml.NVMLError as err:
                notes.append(f"GPU {index}: NVML could not query it: {err}")
    except nvml.NVMLError as err:
        return _NvmlResult(absent_reason=f"NVML query failed: {err}")
    finally:
        with contextlib.suppress(nvml.NVMLError):  # a failed shutdown leaves nothing to release
            nvml.nvmlShutdown()
    if not gpus:
        reason = NO_GPUS if count == 0 else f"NVML found {count} GPU(s) but none could be queried"
        return _NvmlResult(absent_reason=reason, driver_version=driver, cuda_driver_version=cuda, notes=tuple(notes))
    return _NvmlResult(tuple(gpus), None, driver, cuda, tuple(notes))


def _init_failure(nvml: Any, err: Exception) -> str:
    """Say why NVML is unusable in the words an operator can act on."""
    if isinstance(err, getattr(nvml, "NVMLError_LibraryNotFound", ())):
        return NO_NVML_LIBRARY
    if isinstance(err, getattr(nvml, "NVMLError_DriverNotLoaded", ())):
        return "Can't initialize NVML: NVIDIA driver not loaded"
    return f"Can't initialize NVML: {err}"


def _gpu_info(nvml: Any, index: int) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    return GpuInfo(index, _text(nvml.nvmlDeviceGetName(handle)), int(memory.total), int(memory.free), (major, minor))


def _cuda_driver_version(nvml: Any) -> str | None:
    """CUDA version of the installed driver, e.g. 12040 -> "12.4"; _v2 asks libcuda itself."""
    for name in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        query = getattr(nvml, name, None)
        if query is None:
            continue
        try:
            version = int(query())
        except nvml.NVMLError:
            continue
        return f"{version // 1000}.{version % 1000 // 10}"
    return None


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def read_cpuinfo() -> str:
    """/proc/cpuinfo as text; empty where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpuinfo_flags(cpuinfo: str) -> frozenset[str]:
    """Every CPU flag in /proc/cpuinfo text (x86 `flags`, ARM `Features`), from its first processor."""
    match = re.search(r"^(?:flags|Features)\s*:(.*)$", cpuinfo, re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


def parse_cpu_flags(cpuinfo: str) -> tuple[str, ...]:
    """The SIMD flags that matter for choosing a tier, from /proc/cpuinfo text."""
    present = cpuinfo_flags(cpuinfo)
    return tuple(flag for flag in CPU_FLAGS_OF_INTEREST if flag in present)


def parse_cpu_model(cpuinfo: str) -> str | None:
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else None


def probe_libraries() -> LibraryInfo:
    """Which acceleration libraries are installed, without importing torch, TensorRT or vLLM."""
    ort_version, providers = _onnxruntime_info()
    torch_version, torch_cuda = _torch_info()
    return LibraryInfo(ort_version, providers, _tensorrt_version(), torch_version, torch_cuda,
                       _distribution_version(("vllm",)), _distribution_version(("transformers",)))


def _onnxruntime_info() -> tuple[str | None, tuple[str, ...]]:
    try:
        import onnxruntime
    except Exception:  # a broken install (missing shared libraries) counts as absent
        return None, ()
    return onnxruntime.__version__, tuple(onnxruntime.get_available_providers())


def _find_spec(name: str) -> ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _distribution_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorrt_package_version() -> str | None:
    """The version of the installed TensorRT wheels, from package metadata (nothing is imported)."""
    return _distribution_version(TENSORRT_DISTRIBUTIONS)


def _tensorrt_version() -> str | None:
    """Importing tensorrt is slow, so its presence is the module spec and its version the metadata."""
    if _find_spec("tensorrt") is None:
        return None
    return tensorrt_package_version() or "unknown"


def _torch_info() -> tuple[str | None, str | None]:
    """torch version and CUDA build, read from metadata and torch/version.py without importing torch."""
    spec = _find_spec("torch")
    if spec is None or not spec.origin:
        return None, None
    try:
        version_py = (Path(spec.origin).parent / "version.py").read_text(errors="replace")
    except OSError:
        version_py = ""
    version = _distribution_version(("torch",)) or _assigned_string(version_py, "__version__") or "unknown"
    return version, _assigned_string(version_py, "cuda")


def _assigned_string(source: str, name: str) -> str | None:
    """The string literal assigned to `name` at module level (`cuda: Optional[str] = '12.1'`); None otherwise."""
    match = re.search(rf"^{re.escape(name)}\s*(?::[^=\n]*)?=\s*['\"]([^'\"]*)['\"]", source, re.MULTILINE)
    return match.group(1) if match else None


def simulated_gpu(spec: str) -> GpuInfo:
    """Parse the operator's --simulate_gpu "NAME:MEM_GB:CC" (e.g. "RTX 4060:8:8.9") into a GPU with all memory free."""
    parts = spec.split(":")

    def invalid(detail: str) -> ValueError:
        return ValueError(f"invalid --simulate_gpu {spec!r}: {detail}; expected NAME:MEM_GB:CC, e.g. 'RTX 4060:8:8.9'")

    if len(parts) != 3:
        raise invalid(f"{len(parts)} field(s) separated by ':', need 3")
    name, memory_text, cc_text = (part.strip() for part in parts)
    if not name:
        raise invalid("empty GPU name")
    try:
        memory_gb = float(memory_text)
    except ValueError:
        raise invalid(f"memory {memory_text!r} is not a number of GB") from None
    if not math.isfinite(memory_gb) or memory_gb <= 0:
        raise invalid(f"memory {memory_text!r} must be a positive number of GB")
    cc = re.fullmatch(r"(\d+)\.(\d+)", cc_text)
    if cc is None:
        raise invalid(f"compute capability {cc_text!r} must look like 8.9")
    memory = round(memory_gb * GB)
    return GpuInfo(0, name, memory, memory, (int(cc.group(1)), int(cc.group(2))))


def with_simulated_gpus(profile: HardwareProfile, gpus: list[GpuInfo] | tuple[GpuInfo, ...]) -> HardwareProfile:
    """`profile` with its GPUs replaced (re-indexed in order) and marked simulated; see `HardwareProfile`."""
    if not gpus:
        raise ValueError("with_simulated_gpus needs at least one GPU")
    return replace(
        profile,
        gpus=tuple(replace(gpu, index=index) for index, gpu in enumerate(gpus)),
        gpu_absent_reason=None,
        simulated=True,
    )


def best_gpu(profile: HardwareProfile) -> GpuInfo | None:
    """The GPU with the most free memory (lowest index on a tie); the GPU tiers are planned for it."""
    return max(profile.gpus, key=lambda gpu: (gpu.memory_free, -gpu.index), default=None)


def describe(profile: HardwareProfile) -> list[str]:
    """One line per fact, for the operator's log."""
    lines = [
        f"GPU {gpu.index}: {gpu.name}, {gpu.memory_free / GB:.1f}/{gpu.memory_total / GB:.1f} GB free, "
        f"compute {gpu.compute_capability_text}" + (" (simulated)" if profile.simulated else "")
        for gpu in profile.gpus
    ]
    if not profile.gpus:
        lines.append(f"no GPU: {profile.gpu_absent_reason or 'none found'}")
    if profile.simulated:
        lines.append("simulated GPUs: CUDA and TensorRT libraries are assumed present for planning")
    if profile.driver_version:
        lines.append(f"NVIDIA driver {profile.driver_version}, CUDA driver {profile.cuda_driver_version or 'unknown'}")
    physical = f", {profile.cpu_physical_cores} physical" if profile.cpu_physical_cores else ""
    flags = ", ".join(profile.cpu_flags) or "none of " + "/".join(CPU_FLAGS_OF_INTEREST)
    lines.append(f"CPU: {profile.cpu_model or 'unknown model'}, {profile.cpu_cores} logical cores{physical}, {flags}")
    lines.append(f"RAM: {profile.ram_available / GB:.1f}/{profile.ram_total / GB:.1f} GB available")
    libraries = profile.libraries
    if libraries.onnxruntime_version:
        lines.append(
            f"onnxruntime {libraries.onnxruntime_version}: {', '.join(libraries.ort_providers) or 'no providers'}"
        )
    else:
        lines.append("onnxruntime: not installed")
    lines.append(f"TensorRT {libraries.tensorrt_version}" if libraries.tensorrt_version else "TensorRT: not installed")
    if libraries.torch_version:
        build = f"CUDA {libraries.torch_cuda}" if libraries.torch_cuda else "no CUDA build"
        lines.append(f"torch {libraries.torch_version} ({build})")
    else:
        lines.append("torch: not installed")
    lines.append(", ".join(f"{name} {version}" if version else f"{name}: not installed" for name, version in
                           (("vllm", libraries.vllm_version), ("transformers", libraries.transformers_version))))
    system = profile.platform
    lines.append(f"platform: {system.system} {system.release} {system.machine}, Python {system.python}")
    return lines + list(profile.notes)


def cuda_device_id(gpu_index: int, environ: dict[str, str] | None = None) -> int:
    """The CUDA ordinal of the GPU NVML calls `gpu_index`: CUDA_VISIBLE_DEVICES renumbers the GPUs it lists from 0
    (NVML ignores it). A GPU it does not list, or a list of UUIDs, maps to 0, the first GPU CUDA sees."""
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if not visible:
        return gpu_index
    items = [item.strip() for item in visible.split(",")]
    return items.index(str(gpu_index)) if str(gpu_index) in items else 0
