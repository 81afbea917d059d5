"""CUDA runtime seen by each library, and whether the cuDNN each one needs can really be loaded.

The driver says which CUDA it supports (NVML); each library was built for one CUDA runtime.
A runtime newer (major) than the driver cannot start at all; a newer minor usually works
through minor-version compatibility but loses PTX JIT, so it is warned. torch is the only
library imported, and only in a child process (see `probes.py` for why).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ttspilot.diagnose.libraries import (
    DRIVER_FOR_CUDA,
    GpuLibraries,
    cudnn_number_major,
    cudnn_wheel_dirs,
    version_tuple,
)
from ttspilot.diagnose.result import Finding, failed, merge, passed, skipped, warned
from ttspilot.hardware import GpuInfo, HardwareProfile

PROBES = Path(__file__).with_name("probes.py")
TORCH_PROBE_TIMEOUT_S = 120.0  # a cold torch import on a slow disk takes tens of seconds
TORCH_INDEX = "https://download.pytorch.org/whl/cu{tag}"


def run_probe(kind: str, *args: str, timeout: float = 60.0) -> dict:
    """Run `probes.py KIND ARGS` in a fresh interpreter and return its JSON; {"probe_error": ...} on failure."""
    try:
        done = subprocess.run([sys.executable, str(PROBES), kind, *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"probe_error": f"no answer within {timeout:.0f} s"}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {"probe_error": f"crashed: {tail[0]}"}


def probe_torch() -> dict:
    return run_probe("torch", timeout=TORCH_PROBE_TIMEOUT_S)


def driver_fix(cuda_major: int) -> str:
    minimum = DRIVER_FOR_CUDA.get(cuda_major)
    need = f">= {minimum}" if minimum else "a newer one"
    return f"upgrade the NVIDIA driver to {need} (Ubuntu: sudo ubuntu-drivers install; then reboot)"


def compare_runtime(library: str, runtime: str, driver_cuda: str) -> Finding:
    """A library built for CUDA `runtime` against a driver supporting `driver_cuda`."""
    have, need = version_tuple(driver_cuda), version_tuple(runtime)
    text = f"{library}: built for CUDA {runtime}, driver supports CUDA {driver_cuda}"
    if not have or not need:
        return passed(f"{text} (versions not comparable)")
    if need[0] > have[0]:
        return failed(f"{text}: driver too old, CUDA cannot start", driver_fix(need[0]))
    if need[:2] > have[:2]:
        return warned(f"{text}: works through CUDA minor-version compatibility, but PTX JIT and newer features fail",
                      driver_fix(need[0]))
    return passed(text)


def _sm_supported(gpu: GpuInfo, arch_list: list[str]) -> bool:
    """Does torch carry kernels for this GPU: same-major SASS of a lower-or-equal minor, or PTX to JIT from?"""
    major, minor = gpu.compute_capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        if not number.isdigit() or len(number) < 2:
            continue
        arch_major, arch_minor = int(number[:-1]), int(number[-1])
        if kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def torch_finding(info: dict, profile: HardwareProfile, *, engine: str) -> Finding:
    if "probe_error" in info:
        return warned(f"torch: could not be probed ({info['probe_error']})",
                      "run: python -c 'import torch; print(torch.cuda.is_available())' to see the error")
    if "import_error" in info:
        error = info["import_error"]
        if "_ARRAY_API" in error or "NumPy 1.x" in error:
            return failed(f"torch fails to import: {error}", 'pip install "numpy<2" (or upgrade torch to >= 2.4)')
        return failed(f"torch fails to import: {error}", "pip install --force-reinstall torch (the CUDA build "
                      "matching your driver, see https://pytorch.org/get-started/locally/)")
    version, cuda = info.get("version", "?"), info.get("cuda")
    cudnn = cudnn_number_major(info.get("cudnn"))
    text = f"torch {version}: " + (f"CUDA {cuda}, cuDNN {info.get('cudnn') or '?'}" if cuda else "CPU build")
    if not cuda:
        if profile.gpus and engine == "cosyvoice":
            return warned(f"{text}: CosyVoice will run on the CPU although a GPU is present",
                          f"pip install torch=={version.split('+')[0]} --index-url {TORCH_INDEX.format(tag='121')} "
                          "(pick the CUDA tag your driver supports)")
        return passed(text)
    if not profile.gpus:
        return skipped(f"{text}: no NVIDIA GPU/driver, so CUDA cannot start here",
                       "nothing to fix for the cpu tier")
    parts = [compare_runtime(f"torch {version}", cuda, profile.cuda_driver_version)] if profile.cuda_driver_version \
        else []
    if not info.get("is_available"):
        why = "; ".join(info.get("warnings", []) + [info.get("cuda_error", "")]).strip("; ") or "no reason given"
        parts.append(failed(f"{text}: torch.cuda.is_available() is False: {why}",
                            driver_fix(version_tuple(cuda)[0]) if "too old" in why else
                            "check nvidia-smi, CUDA_VISIBLE_DEVICES and (in a container) --gpus all"))
    else:
        unsupported = [gpu for gpu in profile.gpus if not _sm_supported(gpu, info.get("arch_list", []))]
        for gpu in unsupported:
            parts.append(failed(
                f"{text}: no kernels for GPU {gpu.index} ({gpu.name}, sm_{gpu.compute_capability[0]}"
                f"{gpu.compute_capability[1]}); torch was built for {' '.join(info.get('arch_list', []))}",
                "install a torch build for this GPU, e.g. pip install torch --index-url "
                + TORCH_INDEX.format(tag="128"),
            ))
        if not unsupported:
            parts.append(passed(f"{text}: torch.cuda.is_available() on {info.get('device_count', '?')} GPU(s)"))
    finding = merge(parts)
    return Finding(finding.status, finding.detail, finding.fix,
                   {"torch": {k: v for k, v in info.items() if k != "warnings"}, "torch_cudnn_major": cudnn})


def check_cuda_runtime(profile: HardwareProfile, libs: GpuLibraries, *,
                       torch_probe: Callable[[], dict] = probe_torch, engine: str = "piper") -> Finding:
    parts: list[Finding] = []
    driver = profile.cuda_driver_version
    if libs.torch_version is not None:
        parts.append(torch_finding(torch_probe(), profile, engine=engine))
    if libs.ort is not None and libs.ort.is_cuda_build:
        name = f"{libs.ort.package_name} {libs.ort.version}"
        runtime = libs.ort.cuda_version or f"{libs.ort.cuda_major}.x"
        if not profile.gpus:
            parts.append(skipped(f"{name}: built for CUDA {runtime}; no NVIDIA GPU/driver here",
                                 "nothing to fix for the cpu tier (pip install onnxruntime is enough without a GPU)"))
        elif driver:
            parts.append(compare_runtime(name, runtime, driver))
    if libs.tensorrt_version is not None and libs.tensorrt_cuda_major is not None:
        name = f"TensorRT {libs.tensorrt_version}"
        if not profile.gpus:
            parts.append(skipped(f"{name}: built for CUDA {libs.tensorrt_cuda_major}.x; no NVIDIA GPU/driver here",
                                 "nothing to fix for the cpu tier"))
        elif driver:
            parts.append(compare_runtime(name, f"{libs.tensorrt_cuda_major}.0", driver))
    data = {"driver_cuda": driver}
    if not parts:
        absent = ["torch not installed", "onnxruntime is the CPU build" if libs.ort else "onnxruntime not installed",
                  "TensorRT not installed" if libs.tensorrt_version is None else "TensorRT's CUDA version unknown"]
        detail = "no CUDA runtime installed: " + ", ".join(absent)
        gpu_fix = ("for GPU tiers: pip uninstall -y onnxruntime && pip install onnxruntime-gpu (Piper); "
                   f"pip install torch --index-url {TORCH_INDEX.format(tag='121')} (CosyVoice)")
        if profile.gpus:
            return warned(f"{detail}, although a GPU is present", gpu_fix, **data)
        return skipped(detail, f"nothing to fix for the cpu tier; {gpu_fix}", **data)
    return merge(parts, **data)


def load_cudnn(dirs: list[str]) -> dict:
    return run_probe("cudnn", *dirs)


def _cudnn_install_fix(major: int, cuda_major: int | None, wheel_dir: str | None) -> str:
    cuda_major = cuda_major or 12
    path_fix = f"export LD_LIBRARY_PATH={wheel_dir or '<site-packages>/nvidia/cudnn/lib'}:$LD_LIBRARY_PATH"
    return (f'pip install "nvidia-cudnn-cu{cuda_major}=={major}.*" then {path_fix} '
            f"(or system-wide: sudo apt install libcudnn{major}-cuda-{cuda_major})")


def check_cudnn(profile: HardwareProfile, libs: GpuLibraries, *,
                loader: Callable[[list[str]], dict] = load_cudnn, wheel_dirs: list[str] | None = None) -> Finding:
    """libcudnn.so.8 / .so.9 opened the way ONNX Runtime opens them (by name, in a child process),
    against what each installed library needs."""
    wheel_dirs = cudnn_wheel_dirs() if wheel_dirs is None else wheel_dirs
    probe = loader(wheel_dirs)
    if "probe_error" in probe:
        return warned(f"cuDNN could not be probed: {probe['probe_error']}",
                      "python -c \"import ctypes; ctypes.CDLL('libcudnn.so.9')\" shows the loader's error")
    lines = []
    for major, entry in sorted(probe.items()):
        state = "loads" if entry.get("loadable") else "not loadable"
        copies = f"; pip copy at {', '.join(entry['copies'])}" if entry.get("copies") else ""
        lines.append(f"{entry.get('name', f'libcudnn.so.{major}')}: {state}{copies}")
    facts = "; ".join(lines)
    data = {"libraries": probe, "wheel_dirs": wheel_dirs}

    needs: list[tuple[str, int, bool]] = []  # (library, cuDNN major, loads its own pip copy)
    if libs.ort is not None and libs.ort.cudnn_major is not None:
        cuda_text = libs.ort.cuda_version or libs.ort.cuda_major
        needs.append((f"{libs.ort.package_name} {libs.ort.version} (CUDA {cuda_text})", libs.ort.cudnn_major, False))
    if libs.torch_cuda and libs.torch_cudnn_major is not None:
        needs.append((f"torch {libs.torch_version} (CUDA {libs.torch_cuda})", libs.torch_cudnn_major, True))
    data["needs"] = [{"library": name, "cudnn_major": major} for name, major, _ in needs]
    if not needs:
        return skipped(f"no installed library needs cuDNN (onnxruntime CPU build, no CUDA torch); {facts}",
                       "nothing to fix for the cpu tier; onnxruntime-gpu >= 1.19 needs cuDNN 9, older builds cuDNN 8",
                       **data)
    parts = []
    for name, major, own_copy in needs:
        entry = probe.get(str(major), {})
        copies = entry.get("copies") or []
        if own_copy:
            cuda_major = version_tuple(libs.torch_cuda)[0] if libs.torch_cuda else None
        else:
            cuda_major = libs.ort.cuda_major if libs.ort else None
        if entry.get("loadable"):
            parts.append(passed(f"{name} needs cuDNN {major}: libcudnn.so.{major} loads"))
        elif own_copy and copies:
            parts.append(passed(f"{name} needs cuDNN {major}: torch loads its own copy ({copies[0]})"))
        elif copies:
            parts.append(warned(
                f"{name} needs cuDNN {major}: only the pip copy in {Path(copies[0]).parent} exists, and the loader "
                "does not search there, so the CUDA provider falls back to the CPU",
                f"export LD_LIBRARY_PATH={Path(copies[0]).parent}:$LD_LIBRARY_PATH",
            ))
        elif own_copy:
            parts.append(failed(
                f"{name} needs cuDNN {major}: libcudnn.so.{major} is missing ({entry.get('error', '')})",
                "pip install --force-reinstall torch (its nvidia-cudnn wheel is missing)",
            ))
        else:
            parts.append(failed(
                f"{name} needs cuDNN {major}: libcudnn.so.{major} is missing; "
                f"the CUDA provider will fail with 'libcudnn.so.{major}: cannot open shared object file'",
                _cudnn_install_fix(major, cuda_major, wheel_dirs[0] if wheel_dirs else None),
            ))
    finding = merge(parts, **data)
    detail = f"{finding.detail}\n{facts}"
    if not profile.gpus:
        return skipped(f"no GPU, so cuDNN is not used here\n{detail}", finding.fix or "nothing to fix for the cpu tier",
                       **finding.data)
    return Finding(finding.status, detail, finding.fix, finding.data)
