"""TensorRT from recorded module behaviour: builder start-up failures by CUDA error code, tiny builds,
and which compute capabilities each TensorRT release supports."""

from __future__ import annotations

import pytest

from tests.diagnose.fakes import (
    TRT_INSUFFICIENT_DRIVER,
    TRT_NO_DEVICE,
    FakeTensorRT,
    cpu_profile,
    gpu_profile,
)
from ttspilot.diagnose.result import Status
from ttspilot.diagnose.tensorrt_check import cc_supported, check_tensorrt
from ttspilot.hardware import tensorrt_wheel

GPU_ENV = {"environ": {}, "device_files": True}


def test_builder_and_tiny_engine_pass():
    trt = FakeTensorRT()
    finding = check_tensorrt(gpu_profile(), trt, **GPU_ENV)
    assert finding.status is Status.PASS
    assert "TensorRT 10.13.3.9: builder created, one-layer engine built and deserialised" in finding.detail
    assert trt.builders[0].network_flags == [0]  # TensorRT 10 networks are explicit batch without a flag


def test_tensorrt_8_asks_for_an_explicit_batch_network():
    trt = FakeTensorRT("8.6.1")
    assert check_tensorrt(gpu_profile(), trt, **GPU_ENV).status is Status.PASS
    assert trt.builders[0].network_flags == [1]


def test_error_35_is_a_driver_older_than_tensorrt_cuda():
    trt = FakeTensorRT(builder_messages=TRT_INSUFFICIENT_DRIVER, builder_fails=True)
    finding = check_tensorrt(gpu_profile(driver="470.82.01", cuda_driver="11.4"), trt, trt_cuda_major=12, **GPU_ENV)
    assert finding.status is Status.FAIL
    assert "the builder could not be created" in finding.detail
    assert "driver is older than the CUDA runtime" in finding.detail
    assert "(driver supports CUDA 11.4, this TensorRT needs CUDA 12)" in finding.detail
    assert "upgrade the NVIDIA driver to >= 525.60.13" in finding.fix and "pip install tensorrt-cu11" in finding.fix
    assert "Unable to determine GPU memory usage" in finding.data["messages"]


def test_unable_to_determine_gpu_memory_without_a_code_is_matched_to_the_old_driver():
    trt = FakeTensorRT(builder_messages=[(2, "Unable to determine GPU memory usage")], builder_fails=True)
    finding = check_tensorrt(gpu_profile(cuda_driver="11.8"), trt, trt_cuda_major=12, **GPU_ENV)
    assert finding.status is Status.FAIL and "driver is older" in finding.detail


def test_unable_to_determine_gpu_memory_lists_the_known_causes():
    trt = FakeTensorRT(builder_messages=[(2, "Unable to determine GPU memory usage")], builder_fails=True)
    finding = check_tensorrt(gpu_profile(), trt, trt_cuda_major=12, **GPU_ENV)
    assert finding.status is Status.FAIL
    assert "known causes" in finding.detail and "CUDA_VISIBLE_DEVICES empty" in finding.detail
    assert "--gpus all" in finding.fix


def test_error_100_with_an_empty_cuda_visible_devices():
    trt = FakeTensorRT(builder_messages=TRT_NO_DEVICE, builder_fails=True)
    finding = check_tensorrt(gpu_profile(), trt, environ={"CUDA_VISIBLE_DEVICES": ""}, device_files=True)
    assert finding.status is Status.FAIL
    assert "CUDA sees no GPU" in finding.detail and "CUDA_VISIBLE_DEVICES=''" in finding.detail
    assert finding.fix.startswith("unset CUDA_VISIBLE_DEVICES")


def test_error_100_in_a_container_without_device_files():
    trt = FakeTensorRT(builder_messages=TRT_NO_DEVICE, builder_fails=True)
    finding = check_tensorrt(gpu_profile(), trt, environ={}, device_files=False)
    assert finding.status is Status.FAIL and "no /dev/nvidia*" in finding.detail
    assert "--gpus all" in finding.fix


def test_error_999_suggests_reloading_nvidia_uvm():
    trt = FakeTensorRT(builder_messages=[(2, "CUDA initialization failure with error: 999")], builder_fails=True)
    finding = check_tensorrt(gpu_profile(), trt, **GPU_ENV)
    assert finding.status is Status.FAIL and "modprobe nvidia_uvm" in finding.fix


def test_a_failed_tiny_build_reports_the_builder_error():
    trt = FakeTensorRT(build_messages=[(1, "Error Code 2: Internal Error (Assertion failed: out of memory)")],
                       build_fails=True)
    finding = check_tensorrt(gpu_profile(), trt, **GPU_ENV)
    assert finding.status is Status.FAIL and "did not build" in finding.detail and "out of memory" in finding.detail


def test_volta_with_tensorrt_10_5_or_later_fails():
    finding = check_tensorrt(gpu_profile("Tesla V100", 32.0, 30.0, (7, 0)), FakeTensorRT("10.7.0"), **GPU_ENV)
    assert finding.status is Status.FAIL and "supports compute capability >= 7.5" in finding.detail
    assert "jit tiers" in finding.fix


@pytest.mark.parametrize(
    ("version", "cc", "problem"),
    [
        ("10.13.3.9", (8, 9), None),
        ("10.13.3.9", (12, 0), None),
        ("10.7.0", (12, 0), "needs TensorRT >= 10.8"),
        ("10.4.0", (7, 0), None),
        ("10.5.0", (7, 0), ">= 7.5"),
        ("8.6.1", (6, 1), None),
        ("8.6.1", (3, 7), ">= 5.0"),
        ("8.4.3", (8, 9), "needs TensorRT >= 8.5"),
        ("9.3.0", (5, 2), ">= 6.0"),
    ],
)
def test_compute_capability_support_per_release(version, cc, problem):
    why = cc_supported(version, cc)
    assert (why is None) if problem is None else (problem in why)


def test_no_gpu_means_no_builder():
    trt = FakeTensorRT()
    finding = check_tensorrt(cpu_profile(), trt, **GPU_ENV)
    assert finding.status is Status.SKIP and trt.builders == [] and trt.logger is None


def test_not_installed_here():
    # tensorrt is not installed on this machine: the real import path is taken
    assert check_tensorrt(cpu_profile()).status is Status.SKIP
    assert check_tensorrt(gpu_profile(), engine="piper").status is Status.SKIP
    cosy = check_tensorrt(gpu_profile(), engine="cosyvoice")
    assert cosy.status is Status.WARN and f"pip install {tensorrt_wheel()}" in cosy.fix
