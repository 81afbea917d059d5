"""What GPU libraries are installed and what they were built for, read from package metadata and
files only (nothing here imports torch, TensorRT or ONNX Runtime).

Facts worth knowing by heart, used by the CUDA and cuDNN checks:
- onnxruntime-gpu: PyPI builds up to 1.18.0 are CUDA 11.8 + cuDNN 8; 1.18.1 added CUDA 12 builds
  with cuDNN 9 (CUDA 12 builds of 1.17/1.18.0 used cuDNN 8); from 1.19 PyPI's default is
  CUDA 12 + cuDNN 9. A build made for cuDNN 8 cannot use cuDNN 9 and the other way round.
  The build's CUDA version is written in onnxruntime/capi/build_and_package_info.py.
- torch wheels bring their own cuDNN as a pip dependency (torch 2.3: cuDNN 8, 2.4 and later: 9),
  which torch loads itself; ONNX Runtime does not look inside those wheels unless told to.
- Minimum Linux driver per CUDA major (CUDA minor-version compatibility): 11.x 450.80.02,
  12.x 525.60.13, 13.x 580.65.06.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ttspilot.hardware import HardwareProfile

DRIVER_FOR_CUDA = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
ORT_DISTRIBUTION = re.compile(r"^(onnxruntime(-[a-z0-9-]+)?|ort-nightly(-[a-z0-9-]+)?)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    """Normalized distribution name -> version, for everything importable here."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize(name), dist.version)
    return found


def version_tuple(text: str | None) -> tuple[int, ...]:
    """Leading numeric components: "1.18.0" -> (1, 18, 0), "2.3.1+cu121" -> (2, 3, 1), "12.4" -> (12, 4)."""
    if not text:
        return ()
    parts = []
    for piece in re.split(r"[.+-]", text):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    return tuple(parts)


def ort_distributions(dists: dict[str, str]) -> dict[str, str]:
    """The installed distributions that provide the `onnxruntime` package (there must be exactly one)."""
    return {name: version for name, version in dists.items() if ORT_DISTRIBUTION.match(name)}


@dataclass(frozen=True)
class OrtBuild:
    """What build of ONNX Runtime sits in the `onnxruntime` package folder, from its build info file."""

    package_name: str  # onnxruntime, onnxruntime-gpu, ...
    version: str
    cuda_version: str | None  # "12.2" for CUDA builds, None for CPU builds

    @property
    def is_cuda_build(self) -> bool:
        return self.cuda_version is not None or "gpu" in self.package_name

    @property
    def cuda_major(self) -> int | None:
        if self.cuda_version:
            return version_tuple(self.cuda_version)[0]
        if not self.is_cuda_build:
            return None
        return 12 if version_tuple(self.version) >= (1, 19) else 11  # PyPI defaults

    @property
    def cudnn_major(self) -> int | None:
        major = self.cuda_major
        if major is None:
            return None
        if major >= 13:
            return 9
        if major == 12:
            return 9 if version_tuple(self.version) >= (1, 18, 1) else 8
        return 8


def parse_build_info(text: str) -> OrtBuild | None:
    def assigned(name: str) -> str | None:
        match = re.search(rf"^{name}\s*=\s*['\"]([^'\"]*)['\"]", text, re.MULTILINE)
        return match.group(1) if match else None

    package, version = assigned("package_name"), assigned("__version__")
    if not package or not version:
        return None
    return OrtBuild(package, version, assigned("cuda_version") or None)


def ort_build() -> OrtBuild | None:
    """The installed ONNX Runtime build, or None when the package is absent or has no build info."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "capi" / "build_and_package_info.py").read_text(errors="replace")
    except OSError:
        return None
    return parse_build_info(text)


def tensorrt_cuda_major(dists: dict[str, str]) -> int | None:
    """CUDA major of the installed TensorRT wheels (tensorrt-cu12 -> 12)."""
    for name in dists:
        match = re.fullmatch(r"tensorrt-cu(\d+)(-libs|-bindings)?", name)
        if match:
            return int(match.group(1))
    return None


def torch_cudnn_major(requires: list[str] | None = None) -> int | None:
    """cuDNN major a torch wheel depends on (its nvidia-cudnn-cuXX pin), None for CPU builds."""
    if requires is None:
        try:
            requires = importlib.metadata.requires("torch") or []
        except importlib.metadata.PackageNotFoundError:
            return None
    for line in requires:
        match = re.match(r"\s*nvidia-cudnn-cu\d+\s*[=~><]=*\s*(\d+)", line)
        if match:
            return int(match.group(1))
    return None


def cudnn_number_major(number: int | None) -> int | None:
    """torch.backends.cudnn.version() -> major: 8902 -> 8, 90100 -> 9."""
    if not number:
        return None
    return number // 10000 if number >= 10000 else number // 1000


def cudnn_wheel_dirs(paths: list[str] | None = None) -> list[str]:
    """Folders of pip-installed cuDNN (nvidia-cudnn-cuXX puts it in site-packages/nvidia/cudnn/lib)."""
    found = []
    for entry in paths if paths is not None else sys.path:
        candidate = Path(entry or ".") / "nvidia" / "cudnn" / "lib"
        if candidate.is_dir():
            found.append(str(candidate.resolve()))
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class GpuLibraries:
    """Everything the CUDA/cuDNN checks need to know about the installed libraries."""

    ort: OrtBuild | None
    torch_version: str | None
    torch_cuda: str | None
    torch_cudnn_major: int | None
    tensorrt_version: str | None
    tensorrt_cuda_major: int | None

    @classmethod
    def installed(cls, profile: HardwareProfile, dists: dict[str, str] | None = None) -> GpuLibraries:
        dists = installed_distributions() if dists is None else dists
        libraries = profile.libraries
        return cls(
            ort=ort_build(),
            torch_version=libraries.torch_version,
            torch_cuda=libraries.torch_cuda,
            torch_cudnn_major=torch_cudnn_major() if libraries.torch_cuda else None,
            tensorrt_version=libraries.tensorrt_version,
            tensorrt_cuda_major=tensorrt_cuda_major(dists),
        )
