"""NVML failures told apart, each with its own fix; GPUs, memory and processes from recorded NVML answers."""

from __future__ import annotations

import pytest

from tests.diagnose.fakes import FakeNvmlWithProcesses
from tests.fakes_nvml import (
    FakeGpu,
    FakeNvml,
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
)
from ttspilot.diagnose.nvidia import check_nvidia, explain_absent
from ttspilot.diagnose.result import Status
from ttspilot.hardware import GB, NO_NVML_BINDINGS, probe


def nvidia(nvml, environ=None):
    return check_nvidia(probe(nvml), nvml, environ=environ or {})


def test_library_not_found_is_a_skip_for_a_cpu_machine():
    finding = nvidia(FakeNvml(init_error=NVMLError_LibraryNotFound("NVML Shared Library Not Found")))
    assert finding.status is Status.SKIP
    assert "NVML library not found" in finding.detail
    assert "--gpus all" in finding.fix and "nvidia-driver" in finding.fix


def test_driver_not_loaded_is_told_apart_from_library_not_found():
    finding = nvidia(FakeNvml(init_error=NVMLError_DriverNotLoaded("Driver Not Loaded")))
    assert finding.status is Status.FAIL
    assert "Can't initialize NVML" in finding.detail and "kernel module is not loaded" in finding.detail
    assert "modprobe nvidia" in finding.fix


def test_driver_library_version_mismatch_says_reboot():
    finding = nvidia(FakeNvml(init_error=NVMLError("RM has detected an NVML/RM version mismatch.")))
    assert finding.status is Status.FAIL and finding.fix.startswith("reboot")


def test_no_permission_points_at_the_device_files():
    finding = nvidia(FakeNvml(init_error=NVMLError_NoPermission("Insufficient Permissions")))
    assert finding.status is Status.FAIL and "/dev/nvidia*" in finding.fix


def test_driver_without_gpus_warns_with_the_container_fix():
    finding = nvidia(FakeNvml([]))
    assert finding.status is Status.WARN and "0 GPUs" in finding.detail and "--gpus all" in finding.fix


def test_missing_bindings_say_what_to_install():
    finding = explain_absent(NO_NVML_BINDINGS)
    assert finding.status is Status.WARN and finding.fix == "pip install nvidia-ml-py"


def test_gpus_with_memory_compute_capability_and_processes():
    nvml = FakeNvmlWithProcesses(
        [FakeGpu("NVIDIA A10G", 24.0, 20.0, (8, 6)), FakeGpu(b"Tesla T4", 16.0, 15.5, (7, 5))],
        processes={0: [(4242, 3 * GB), (77, None)]},
        names={4242: b"/usr/bin/python3 server.py"},
    )
    finding = nvidia(nvml)
    assert finding.status is Status.PASS
    lines = finding.detail.splitlines()
    assert lines[0] == "NVIDIA driver 550.54.15 (supports CUDA 12.4)"
    assert lines[1].startswith("GPU 0: NVIDIA A10G, 20.0/24.0 GB free, compute 8.6; ")
    assert "processes: pid 4242 python3 (3.0 GB)" in lines[1]
    assert "pid 77 " in lines[1] and "(memory n/a)" in lines[1]
    assert lines[2] == "GPU 1: Tesla T4, 15.5/16.0 GB free, compute 7.5; no compute processes"
    assert finding.data["gpus"][0]["processes"][0] == {"pid": 4242, "name": "python3", "used_bytes": 3 * GB}
    assert nvml.calls.count("nvmlInit") == nvml.calls.count("nvmlShutdown") == 2  # probe + process query


def test_little_free_memory_names_the_processes_to_stop():
    nvml = FakeNvmlWithProcesses([FakeGpu("RTX 3060", 12.0, 1.2, (8, 6))], processes={0: [(999, int(10.5 * GB))]},
                                 names={999: "ollama"})
    finding = nvidia(nvml)
    assert finding.status is Status.WARN
    assert "less than 2 GB free" in finding.detail
    assert "kill 999" in finding.fix and "CUDA_VISIBLE_DEVICES" in finding.fix


@pytest.mark.parametrize("value", ["", "-1", "NoDevFiles"])
def test_cuda_visible_devices_hiding_every_gpu_fails(value):
    finding = nvidia(FakeNvmlWithProcesses([FakeGpu("L4", 24.0, 23.0, (8, 9))]), {"CUDA_VISIBLE_DEVICES": value})
    assert finding.status is Status.FAIL and "hides every GPU" in finding.detail
    assert finding.fix.startswith("unset CUDA_VISIBLE_DEVICES")


def test_cuda_visible_devices_selecting_gpus_is_reported():
    finding = nvidia(FakeNvmlWithProcesses([FakeGpu("L4", 24.0, 23.0, (8, 9))]), {"CUDA_VISIBLE_DEVICES": "0"})
    assert finding.status is Status.PASS and "CUDA_VISIBLE_DEVICES=0" in finding.detail


def test_a_lost_gpu_warns():
    finding = nvidia(FakeNvmlWithProcesses([FakeGpu("A100", 40.0, 39.0, (8, 0)), FakeGpu("A100", 40.0, 39.0, (8, 0),
                                                                                         lost=True)]))
    assert finding.status is Status.WARN and "GPU 1: NVML could not query it" in finding.detail
    assert "reboot" in finding.fix


def test_kepler_is_too_old_for_cuda_12():
    finding = nvidia(FakeNvmlWithProcesses([FakeGpu("Tesla K80", 12.0, 11.0, (3, 7))]))
    assert finding.status is Status.WARN and "too old for CUDA 12" in finding.detail
