"""Load pip-installed CUDA, cuDNN and TensorRT libraries before the first GPU session (docs/architecture.md,
"GPU libraries").

`requirements-gpu.txt` installs the CUDA runtime and cuDNN as pip packages (site-packages/nvidia/...), and
`requirements-tensorrt.txt` the TensorRT libraries (site-packages/tensorrt_libs). The dynamic loader does not
look there, so without this the CUDA and TensorRT providers only load when the operator sets LD_LIBRARY_PATH.
ONNX Runtime >= 1.21 has `onnxruntime.preload_dlls()` for CUDA and cuDNN; the TensorRT libraries are loaded
here with ctypes (RTLD_GLOBAL), which is what the provider's own dlopen then finds already in the process.

`preload_gpu_libraries()` runs once per process, is a no-op on a CPU build of ONNX Runtime, and records
which libraries are mapped into the process afterwards and from where (read from /proc/self/maps).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ttspilot.accel")

PRELOAD_MIN_ORT = "1.21"
# Sonames worth naming to an operator: what the CUDA and TensorRT providers need.
GPU_LIBRARY = re.compile(
    r"^lib(cudart|cublas|cublasLt|cufft|curand|nvrtc|cudnn|nvinfer|nvinfer_plugin|nvonnxparser)\.so[.\d]*$"
)
# Loaded in this order: the plugin and parser libraries link against libnvinfer.
TENSORRT_LIBRARIES = ("libnvinfer.so", "libnvinfer_plugin.so", "libnvonnxparser.so")


@dataclass(frozen=True)
class LoadedLibrary:
    name: str  # soname as mapped, e.g. libcudnn.so.9
    path: str  # the file it was mapped from
    source: str  # "preload_dlls" | "tensorrt_libs" | "already loaded"

    def __str__(self) -> str:
        return f"{self.name} from {self.path} ({self.source})"


@dataclass(frozen=True)
class PreloadReport:
    """What the preload did; `lines` are the operator log lines, one each."""

    ort_version: str
    cuda_build: bool
    preload_dlls: bool  # onnxruntime has preload_dlls()
    loaded: tuple[LoadedLibrary, ...] = ()
    problems: tuple[str, ...] = ()
    skipped: str = ""  # why nothing was loaded (CPU build)

    @property
    def lines(self) -> list[str]:
        if self.skipped:
            return [f"GPU library preload skipped: {self.skipped}"]
        out = [f"GPU library loaded: {library}" for library in self.loaded]
        out += [f"GPU library preload: {problem}" for problem in self.problems]
        return out or ["GPU library preload: no CUDA, cuDNN or TensorRT library is loaded in this process"]


def mapped_libraries(maps_text: str) -> dict[str, str]:
    """Soname -> file for the GPU libraries in a /proc/<pid>/maps text. Pure."""
    found: dict[str, str] = {}
    for line in maps_text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        path = parts[5].strip()
        name = Path(path).name
        if GPU_LIBRARY.match(name):
            found.setdefault(name, path)
    return found


def _process_libraries() -> dict[str, str]:
    try:
        return mapped_libraries(Path("/proc/self/maps").read_text())
    except OSError:
        return {}


def tensorrt_libs_dir() -> Path | None:
    """The folder of the `tensorrt_libs` package (tensorrt-cu13-libs, tensorrt-cu12-libs), without importing it."""
    spec = importlib.util.find_spec("tensorrt_libs")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tensorrt_library_files(folder: Path) -> list[Path]:
    """The TensorRT libraries in `folder` to load, in load order (the versioned file of each)."""
    files: list[Path] = []
    for stem in TENSORRT_LIBRARIES:
        matches = sorted(p for p in folder.glob(f"{stem}.*") if re.fullmatch(rf"{re.escape(stem)}\.\d+", p.name))
        files.extend(matches[-1:])
    return files


def load_tensorrt_libraries(folder: Path) -> list[str]:
    """dlopen the TensorRT libraries of `folder` globally; the problems, one line each."""
    problems = []
    files = tensorrt_library_files(folder)
    if not files:
        return [f"no libnvinfer.so.* in {folder}"]
    for path in files:
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            problems.append(f"{path.name} failed to load: {str(exc).strip().splitlines()[0]}")
    return problems


def _preload(ort_module) -> PreloadReport:
    version = getattr(ort_module, "__version__", "unknown")
    available = list(ort_module.get_available_providers())
    cuda_build = "CUDAExecutionProvider" in available or "TensorrtExecutionProvider" in available
    has_preload = callable(getattr(ort_module, "preload_dlls", None))
    if not cuda_build:
        return PreloadReport(version, False, has_preload, skipped=f"onnxruntime {version} is a CPU build")
    before = _process_libraries()
    problems: list[str] = []
    if has_preload:
        try:
            ort_module.preload_dlls(cuda=True, cudnn=True, msvc=False)
        except Exception as exc:  # noqa: BLE001  (it raises RuntimeError for a bad directory; keep the process up)
            problems.append(f"onnxruntime.preload_dlls failed: {exc}")
    else:
        problems.append(
            f"onnxruntime {version} has no preload_dlls(): pip-installed CUDA and cuDNN load only through "
            f"LD_LIBRARY_PATH; install onnxruntime-gpu>={PRELOAD_MIN_ORT} "
            f"(pip install -U \"onnxruntime-gpu[cuda,cudnn]>={PRELOAD_MIN_ORT}\")"
        )
    after_cuda = _process_libraries()
    folder = tensorrt_libs_dir()
    if folder is not None:
        problems += load_tensorrt_libraries(folder)
    after = _process_libraries()
    loaded = []
    for name, path in sorted(after.items()):
        if name in before:
            source = "already loaded"
        elif name in after_cuda:
            source = "preload_dlls"
        else:
            source = "tensorrt_libs"
        loaded.append(LoadedLibrary(name, path, source))
    return PreloadReport(version, True, has_preload, tuple(loaded), tuple(problems))


_report: PreloadReport | None = None


def preload_gpu_libraries() -> PreloadReport:
    """Preload once per process and log each library (or why not); later calls return the first report."""
    global _report
    if _report is None:
        import onnxruntime

        _report = _preload(onnxruntime)
        for line in _report.lines:
            log.info(line)
    return _report
