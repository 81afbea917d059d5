"""NVIDIA driver and GPUs through NVML: driver, per-GPU memory and compute capability, and who holds the memory.

The GPU list comes from `ttspilot.hardware.probe`, so this report and the launcher's tier
choice can never disagree; this module adds what only an operator needs: why NVML is
unusable (each known failure with its own fix), the processes holding GPU memory, and a
CUDA_VISIBLE_DEVICES that hides GPUs NVML can see (NVML ignores that variable, CUDA obeys it).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ttspilot.diagnose.result import Finding, failed, passed, skipped, warned
from ttspilot.hardware import GB, NO_GPUS, NO_NVML_BINDINGS, NO_NVML_LIBRARY, HardwareProfile
from ttspilot.tiers import MIN_FREE_GB, best_gpu

MIN_CUDA12_CC = (5, 0)  # CUDA 12 dropped Kepler (3.x)
HIDING_VALUES = ("", "-1", "none", "nodevfiles", "void")

DRIVER_FIX = (
    "install the NVIDIA driver (Ubuntu: sudo ubuntu-drivers install; or sudo apt install nvidia-driver-550), "
    "then reboot; in Docker, install the NVIDIA Container Toolkit and run with --gpus all"
)


def explain_absent(reason: str | None) -> Finding:
    """The finding for a profile without GPUs, from `probe()`'s reason text."""
    reason = reason or "no GPU found"
    data = {"reason": reason}
    if reason == NO_NVML_LIBRARY:
        return skipped(
            f"no NVIDIA driver: {reason}; this machine runs the cpu tier",
            f"nothing to fix for the cpu tier; if the machine has an NVIDIA GPU: {DRIVER_FIX}",
            **data,
        )
    if reason == NO_NVML_BINDINGS:
        return warned(f"cannot look for GPUs: {reason}", "pip install nvidia-ml-py", **data)
    if reason == NO_GPUS:
        return warned(
            "NVIDIA driver loaded, but NVML sees 0 GPUs",
            "in a container run with --gpus all (or NVIDIA_VISIBLE_DEVICES=all); on a host check "
            "`nvidia-smi -L` and `lspci | grep -i nvidia`",
            **data,
        )
    lowered = reason.lower()
    if "driver not loaded" in lowered:
        return failed(
            f"{reason}: the driver's user-space libraries are installed but the kernel module is not loaded",
            "sudo modprobe nvidia (see `dmesg | grep -i nvidia`; with Secure Boot the module must be signed), "
            "or reboot after installing the driver",
            **data,
        )
    if "version mismatch" in lowered:
        return failed(
            f"{reason}: the driver was upgraded but the old kernel module is still loaded",
            "reboot (or unload and reload the module: sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && "
            "sudo modprobe nvidia)",
            **data,
        )
    if "insufficient permissions" in lowered or "no permission" in lowered:
        return failed(
            f"{reason}: this user cannot open /dev/nvidia*",
            "ls -l /dev/nvidia*; add the user to the group owning them (sudo usermod -aG video $USER) "
            "or run the container with --gpus all",
            **data,
        )
    if reason.startswith("Can't initialize NVML"):
        return failed(reason, f"run nvidia-smi to see the driver's own error; reinstall the driver if it fails: "
                              f"{DRIVER_FIX}", **data)
    return failed(
        f"GPU query failed: {reason}",
        "run nvidia-smi -q; a GPU that fell off the bus ('GPU is lost') needs a reboot",
        **data,
    )


def gpu_processes(nvml: Any, indexes: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Compute processes per GPU index: pid, name, used bytes (None when the driver cannot tell).

    Best effort: a GPU or process NVML cannot describe is left out rather than failing the check.
    """
    found: dict[int, list[dict[str, Any]]] = {}
    try:
        nvml.nvmlInit()
    except Exception:
        return found
    try:
        for index in indexes:
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except Exception:
                continue
            rows = []
            for process in processes:
                used = getattr(process, "usedGpuMemory", None)
                rows.append({"pid": int(process.pid), "name": _process_name(nvml, int(process.pid)),
                             "used_bytes": int(used) if used is not None else None})
            found[index] = rows
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return found


def _process_name(nvml: Any, pid: int) -> str:
    getter = getattr(nvml, "nvmlSystemGetProcessName", None)
    if getter is not None:
        with contextlib.suppress(Exception):
            name = getter(pid)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            if name:
                return os.path.basename(name.split()[0]) if name.startswith("/") else name
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:  # another PID namespace (container) or the process is gone
        return "?"


def _describe_processes(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no compute processes"
    shown = []
    for row in rows:
        used = f"{row['used_bytes'] / GB:.1f} GB" if row["used_bytes"] is not None else "memory n/a"
        shown.append(f"pid {row['pid']} {row['name']} ({used})")
    return "processes: " + ", ".join(shown)


def check_nvidia(profile: HardwareProfile, nvml: Any = None, *, environ: dict[str, str] | None = None) -> Finding:
    environ = dict(os.environ) if environ is None else environ
    if not profile.gpus:
        return explain_absent(profile.gpu_absent_reason)
    if nvml is None:
        import pynvml as nvml
    processes = gpu_processes(nvml, [gpu.index for gpu in profile.gpus])
    lines = [f"NVIDIA driver {profile.driver_version or '?'} (supports CUDA {profile.cuda_driver_version or '?'})"]
    gpus = []
    for gpu in profile.gpus:
        rows = processes.get(gpu.index, [])
        lines.append(
            f"GPU {gpu.index}: {gpu.name}, {gpu.memory_free / GB:.1f}/{gpu.memory_total / GB:.1f} GB free, "
            f"compute {gpu.compute_capability_text}; {_describe_processes(rows)}"
        )
        gpus.append({"index": gpu.index, "name": gpu.name, "memory_total_bytes": gpu.memory_total,
                     "memory_free_bytes": gpu.memory_free, "compute_capability": gpu.compute_capability_text,
                     "processes": rows})
    lines.extend(profile.notes)
    data = {"driver_version": profile.driver_version, "cuda_driver_version": profile.cuda_driver_version,
            "gpus": gpus}
    detail = "\n".join(lines)

    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        data["cuda_visible_devices"] = visible
        if visible.strip().lower() in HIDING_VALUES:
            return failed(
                f"{detail}\nCUDA_VISIBLE_DEVICES={visible!r} hides every GPU from CUDA (NVML still lists them)",
                "unset CUDA_VISIBLE_DEVICES (or set it to the GPU index to use, e.g. CUDA_VISIBLE_DEVICES=0)",
                **data,
            )
        detail += f"\nCUDA_VISIBLE_DEVICES={visible}: CUDA programs see only these GPUs, renumbered from 0"
    if profile.notes:
        return warned(detail, "run nvidia-smi -q for the GPU NVML could not query; a lost GPU needs a reboot", **data)
    old = [gpu for gpu in profile.gpus if gpu.compute_capability < MIN_CUDA12_CC]
    if old:
        names = ", ".join(f"GPU {gpu.index} ({gpu.name}, {gpu.compute_capability_text})" for gpu in old)
        return warned(f"{detail}\n{names}: too old for CUDA 12 builds", "use a GPU with compute capability >= 5.0 "
                      "(>= 7.5 for TensorRT tiers), or the cpu tier", **data)
    best = best_gpu(profile)
    floor = min(MIN_FREE_GB.values())
    if best is not None and best.memory_free < floor * GB:
        holders = [f"kill {row['pid']}" for row in processes.get(best.index, []) if row["pid"]]
        stop = f"stop what holds it ({'; '.join(holders)})" if holders else "stop what holds it (see nvidia-smi)"
        return warned(
            f"{detail}\nless than {floor:g} GB free on the best GPU: only the jit, fp16 and basic tiers fit",
            f"{stop}, or pick a freer GPU with CUDA_VISIBLE_DEVICES=<index>",
            **data,
        )
    return passed(detail, **data)
