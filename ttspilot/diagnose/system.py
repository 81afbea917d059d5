"""System checks: operating system, Python, CPU, memory, and the disk where caches live."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ttspilot.diagnose.result import Finding, failed, merge, passed, skipped, warned
from ttspilot.hardware import GB

SUPPORTED_PYTHON = ((3, 10), (3, 12))
MIN_CPUS = 2.0
# GB of available memory: below the first a model may not load at all, below the second it swaps.
RAM_NEEDS = {"piper": (0.5, 1.0), "cosyvoice": (4.0, 8.0)}
DISK_FAIL_GB = 0.2
DISK_WARN_GB = 2.0  # a CosyVoice TensorRT plan plus an optimized graph take several hundred MB


def check_os(system: str | None = None, release: str | None = None, machine: str | None = None,
             in_container: bool | None = None) -> Finding:
    system = system if system is not None else platform.system()
    release = release if release is not None else platform.release()
    machine = machine if machine is not None else platform.machine()
    in_container = _in_container() if in_container is None else in_container
    where = " (in a container)" if in_container else ""
    data = {"system": system, "release": release, "machine": machine, "container": in_container}
    detail = f"{system} {release} {machine}{where}"
    if system == "Linux":
        if "microsoft" in release.lower():
            detail += "; WSL2: the GPU comes from the Windows driver (do not install a Linux driver inside WSL)"
        return passed(detail, **data)
    if system == "Darwin":
        return warned(
            f"{detail}: macOS has no CUDA, so only the cpu tier can run",
            "nothing to fix for the cpu tier; for GPU tiers run ttspilot on Linux with an NVIDIA GPU",
            **data,
        )
    if system == "Windows":
        return warned(
            f"{detail}: GPU tiers are built and tested on Linux",
            "run ttspilot inside WSL2 (wsl --install -d Ubuntu) or on a Linux host",
            **data,
        )
    return warned(f"{detail}: untested operating system", "use Linux (x86_64 or aarch64)", **data)


def _in_container() -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text(errors="replace")
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "lxc"))


def check_python(version: Sequence[int] | None = None, *, cuda_stack: bool = False,
                 executable: str | None = None) -> Finding:
    """3.10-3.12 supported. 3.13 works for the CPU path but CUDA stacks (torch, TensorRT,
    onnxruntime-gpu builds pinned by CosyVoice) often have no 3.13 wheels, so it is warned
    when a GPU or CosyVoice is in play."""
    major, minor, micro = (tuple(version) + (0, 0, 0))[:3] if version is not None else sys.version_info[:3]
    executable = executable or sys.executable
    text = f"Python {major}.{minor}.{micro} ({executable})"
    data = {"version": f"{major}.{minor}.{micro}", "executable": executable}
    venv_fix = "python3.12 -m venv .venv && .venv/bin/pip install -r requirements.txt"
    if (major, minor) < SUPPORTED_PYTHON[0]:
        return failed(f"{text}: ttspilot needs Python 3.10-3.12", f"install Python 3.12, then: {venv_fix}", **data)
    if (major, minor) <= SUPPORTED_PYTHON[1]:
        return passed(text, **data)
    if (major, minor) == (3, 13) and not cuda_stack:
        return passed(f"{text}: fine for the CPU path (GPU stacks may lack 3.13 wheels)", **data)
    if (major, minor) == (3, 13):
        return warned(
            f"{text}: CUDA stacks (torch, tensorrt, onnxruntime-gpu versions CosyVoice pins) may have no 3.13 wheels",
            venv_fix, **data,
        )
    return warned(f"{text}: newer than the tested 3.10-3.12", venv_fix, **data)


def cgroup_cpu_limit(cpu_max: str) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line ("200000 100000" -> 2.0; "max 100000" -> None)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if period > 0 else None


def read_cgroup_cpu_limit() -> float | None:
    try:
        return cgroup_cpu_limit(Path("/sys/fs/cgroup/cpu.max").read_text())
    except OSError:
        return None


def cpu_affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def check_cpu(logical: int, *, model: str | None = None, flags: Iterable[str] = (), machine: str | None = None,
              affinity: int | None = None, cgroup_limit: float | None = None) -> Finding:
    machine = machine or platform.machine()
    flags = tuple(flags)
    usable = float(logical)
    limits = []
    if affinity is not None and affinity < logical:
        usable = float(affinity)
        limits.append(f"affinity {affinity}")
    if cgroup_limit is not None and cgroup_limit < usable:
        usable = cgroup_limit
        limits.append(f"cgroup limit {cgroup_limit:g} CPUs")
    detail = f"{model or 'unknown CPU'}: {logical} logical cores" + (f" ({', '.join(limits)})" if limits else "")
    detail += f"; SIMD: {', '.join(flags) or 'none found'}"
    data = {"logical_cores": logical, "usable_cpus": usable, "flags": list(flags), "model": model}
    if usable < MIN_CPUS:
        return warned(
            f"{detail}: {usable:g} usable CPU(s); CPU synthesis will be slow and requests will queue",
            "give the machine or container more CPUs (docker run --cpus=4 ...; or unset a restrictive taskset)",
            **data,
        )
    if machine.lower() in ("x86_64", "amd64") and "avx2" not in flags:
        return warned(
            f"{detail}: no AVX2, so ONNX Runtime's CPU kernels run slowly",
            "run on a CPU with AVX2 (any x86 server since 2013); in a VM, pass the host CPU model through (-cpu host)",
            **data,
        )
    return passed(detail, **data)


def check_ram(total: int, available: int, *, engine: str = "piper") -> Finding:
    minimum, recommended = RAM_NEEDS.get(engine, RAM_NEEDS["piper"])
    detail = f"{available / GB:.1f} of {total / GB:.1f} GB available"
    data = {"total_bytes": total, "available_bytes": available, "engine": engine}
    fix = "close other programs, add memory or swap, or raise the container limit (docker run --memory=16g ...)"
    if available < minimum * GB:
        return failed(f"{detail}: {engine} needs at least {minimum:g} GB free to load", fix, **data)
    if available < recommended * GB:
        return warned(f"{detail}: {engine} runs best with {recommended:g} GB free", fix, **data)
    return passed(detail, **data)


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(cache_dirs: Sequence[Path], *, usage=shutil.disk_usage, writable=None) -> Finding:
    """Free space and write access where compiled caches are written (the nearest existing folder)."""
    writable = writable or (lambda path: os.access(path, os.W_OK))
    parts: list[Finding] = []
    disks: list[dict] = []
    for cache_dir in dict.fromkeys(Path(d) for d in cache_dirs):
        probe_at = _existing_ancestor(cache_dir)
        try:
            free = usage(probe_at).free
        except OSError as exc:
            parts.append(warned(f"{cache_dir}: cannot read free space ({exc})",
                                "point XDG_CACHE_HOME (embedded voice) or --model_dir at a readable disk"))
            continue
        detail = f"{cache_dir}: {free / GB:.1f} GB free"
        disks.append({"cache_dir": str(cache_dir), "checked_at": str(probe_at), "free_bytes": free})
        move = "free disk space, or point XDG_CACHE_HOME (embedded voice) / --model_dir at a larger disk"
        if not writable(probe_at):
            parts.append(warned(
                f"{detail}; not writable ({probe_at}): compiled caches cannot be kept, every start rebuilds them",
                f"make it writable (sudo chown -R $USER {probe_at}) or export XDG_CACHE_HOME=$HOME/.cache",
            ))
        elif free < DISK_FAIL_GB * GB:
            parts.append(failed(f"{detail}: too little to write compiled caches", move))
        elif free < DISK_WARN_GB * GB:
            parts.append(warned(f"{detail}: TensorRT plans and optimized graphs need up to a few GB", move))
        else:
            parts.append(passed(detail))
    if not parts:
        return skipped("no cache directory to check", "pass --model_dir, or set XDG_CACHE_HOME")
    return merge(parts, disks=disks)
