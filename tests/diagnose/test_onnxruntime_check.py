"""ONNX Runtime: the real CPU run here, and GPU providers from recorded onnxruntime behaviour
(listed but failing to load, silent CPU fallback, nodes placed elsewhere, real success)."""

from __future__ import annotations

import os

import onnx
import onnxruntime
import pytest

from tests.diagnose.fakes import (
    CPU,
    CUDA,
    ORT_CUDNN9_MISSING_LOG,
    ORT_NUMPY2_IMPORT_ERROR,
    ORT_NVINFER10_MISSING_LOG,
    TRT,
    FakeOrt,
    cpu_profile,
    gpu_profile,
)
from ttspilot.diagnose.capture import capture_native_stderr
from ttspilot.diagnose.onnxruntime_check import (
    _encode_tiny_model,
    check_onnxruntime,
    check_ort_cuda,
    check_ort_tensorrt,
    explain_failure,
    node_providers,
    run_tiny_model,
    tiny_model_bytes,
)
from ttspilot.diagnose.result import Status
from ttspilot.hardware import cuda_device_id


def test_the_tiny_model_is_a_valid_onnx_model_and_the_hand_encoding_is_identical():
    model = onnx.load_from_string(tiny_model_bytes())
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["Add", "Relu"]
    assert _encode_tiny_model() == tiny_model_bytes()


def test_the_real_cpu_run_reads_the_executing_provider_from_the_profile():
    run = run_tiny_model(onnxruntime, [CPU])
    assert run.error is None and run.output_ok
    assert run.active == [CPU]
    assert run.node_providers == {"diagnose_add": CPU, "diagnose_relu": CPU}


def test_check_onnxruntime_really_runs_on_this_machine():
    finding = check_onnxruntime()
    assert finding.status is Status.PASS
    assert f"onnxruntime {onnxruntime.__version__} (CPU build" in finding.detail
    assert "tiny model ran on CPUExecutionProvider (2 nodes" in finding.detail
    assert finding.data["cpu_run"]["nodes"] == {"diagnose_add": CPU, "diagnose_relu": CPU}


def test_native_stderr_is_captured():
    with capture_native_stderr() as captured:
        os.write(2, b"[E:onnxruntime] from C++\n")
    assert captured.text == "[E:onnxruntime] from C++"


def test_node_providers_ignores_non_node_events():
    events = [{"cat": "Session", "name": "model_loading_uri", "args": {}},
              {"cat": "Node", "name": "a_kernel_time", "args": {"provider": CUDA}},
              {"cat": "Node", "name": "a_fence_before", "args": {}}]
    assert node_providers(events) == {"a": CUDA}


def test_cuda_machine_with_a_cpu_build_fails_with_the_install_command():
    finding = check_ort_cuda(gpu_profile(providers=(CPU,)), FakeOrt(package_name="onnxruntime", cuda_version=None,
                                                                     available=(CPU,)))
    assert finding.status is Status.FAIL
    assert "CUDAExecutionProvider not available" in finding.detail
    assert finding.fix == "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def test_cpu_machine_skips_the_gpu_providers():
    cpu_build = FakeOrt(package_name="onnxruntime", cuda_version=None, available=(CPU,))
    assert check_ort_cuda(cpu_profile(), cpu_build).status is Status.SKIP
    assert check_ort_tensorrt(cpu_profile(), cpu_build).status is Status.SKIP
    gpu_build = FakeOrt()
    finding = check_ort_cuda(cpu_profile(), gpu_build)
    assert finding.status is Status.SKIP and "not tried" in finding.detail and gpu_build.sessions == []


def test_silent_cpu_fallback_is_caught_and_the_missing_cudnn_named():
    ort = FakeOrt(loads=(CPU,), native_log=ORT_CUDNN9_MISSING_LOG)
    finding = check_ort_cuda(gpu_profile(), ort)
    assert finding.status is Status.FAIL
    assert finding.detail.startswith("silent fallback: CUDAExecutionProvider did not load on GPU 0")
    assert "cuDNN 9 cannot be loaded" in finding.detail
    assert 'pip install "nvidia-cudnn-cu12==9.*"' in finding.fix
    assert "libcudnn.so.9" in finding.data["log"]
    assert ort.sessions[0][0] == (CUDA, {"device_id": "0"})


def test_cuda_loaded_but_nodes_on_the_cpu_fails():
    finding = check_ort_cuda(gpu_profile(), FakeOrt(executes=CPU))
    assert finding.status is Status.FAIL and "executed no node" in finding.detail


def test_cuda_provider_really_running_passes():
    finding = check_ort_cuda(gpu_profile(), FakeOrt())
    assert finding.status is Status.PASS
    assert "tiny model ran on CUDAExecutionProvider on GPU 0 (NVIDIA GeForce RTX 4090" in finding.detail


def test_wrong_results_on_the_gpu_fail():
    assert check_ort_cuda(gpu_profile(), FakeOrt(wrong_output=True)).status is Status.FAIL


def test_session_creation_error_is_explained():
    ort = FakeOrt(create_error="[ONNXRuntimeError] : 1 : FAIL : CUDA failure 35: CUDA driver version is insufficient "
                               "for CUDA runtime version")
    finding = check_ort_cuda(gpu_profile(), ort)
    assert finding.status is Status.FAIL and "older than the CUDA runtime" in finding.detail
    assert "upgrade the NVIDIA driver" in finding.fix


def test_tensorrt_provider_falling_back_to_cuda_names_libnvinfer():
    ort = FakeOrt(loads=(CUDA, CPU), native_log=ORT_NVINFER10_MISSING_LOG)
    finding = check_ort_tensorrt(gpu_profile(), ort)
    assert finding.status is Status.FAIL
    assert "TensorrtExecutionProvider did not load" in finding.detail
    assert "runs on CUDAExecutionProvider" in finding.detail
    assert "TensorRT 10 libraries cannot be loaded" in finding.detail
    assert 'pip install "tensorrt-cu12-libs==10.*"' in finding.fix and "LD_LIBRARY_PATH" in finding.fix
    providers = ort.sessions[0]
    assert [p[0] if isinstance(p, tuple) else p for p in providers] == [TRT, CUDA, CPU]
    assert providers[0][1]["trt_engine_cache_enable"] == "False"


def test_tensorrt_provider_running_passes():
    finding = check_ort_tensorrt(gpu_profile(), FakeOrt())
    assert finding.status is Status.PASS and "on TensorrtExecutionProvider" in finding.detail


def test_tensorrt_provider_absent_from_the_build_warns():
    ort = FakeOrt(available=(CUDA, CPU))
    finding = check_ort_tensorrt(gpu_profile(providers=(CUDA, CPU)), ort)
    assert finding.status is Status.WARN and "full, trt_fp16" in finding.detail


def test_tensorrt_is_not_tried_below_compute_75():
    ort = FakeOrt()
    finding = check_ort_tensorrt(gpu_profile("Tesla V100", 16.0, 15.0, (7, 0)), ort)
    assert finding.status is Status.SKIP and ort.sessions == []


@pytest.mark.parametrize(
    ("text", "cause", "fix"),
    [
        (ORT_NUMPY2_IMPORT_ERROR, "NumPy 1.x", 'pip install "numpy<2"'),
        ("libcublasLt.so.12: cannot open shared object file", "CUDA 12 runtime libraries", "nvidia-cublas-cu12"),
        ("CUDA failure 100: no CUDA-capable device is detected", "CUDA sees no GPU", "CUDA_VISIBLE_DEVICES"),
        ("Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 12.*", "CUDA 12 / cuDNN 9",
         "nvidia-cudnn-cu12==9.*"),
        ("CUDA error cudaErrorMemoryAllocation: out of memory", "out of memory", "stop the processes"),
        ("something unheard of went wrong", "something unheard of", "pip install --force-reinstall onnxruntime-gpu"),
    ],
)
def test_known_failure_texts_map_to_fixes(text, cause, fix):
    got_cause, got_fix = explain_failure(text)
    assert cause in got_cause and fix in got_fix


def test_import_failure_with_numpy_2_is_reported_as_fail(monkeypatch):
    from ttspilot.diagnose import onnxruntime_check

    monkeypatch.setattr(onnxruntime_check, "import_onnxruntime", lambda: (None, ORT_NUMPY2_IMPORT_ERROR))
    finding = check_onnxruntime()
    assert finding.status is Status.FAIL and "compiled against NumPy 1.x" in finding.detail
    assert finding.fix.startswith('pip install "numpy<2"')
    assert check_ort_cuda(gpu_profile()).status is Status.SKIP


def test_cuda_ordinal_follows_cuda_visible_devices():
    assert cuda_device_id(1, {}) == 1
    assert cuda_device_id(1, {"CUDA_VISIBLE_DEVICES": "1"}) == 0
    assert cuda_device_id(3, {"CUDA_VISIBLE_DEVICES": "2, 3"}) == 1
    assert cuda_device_id(1, {"CUDA_VISIBLE_DEVICES": "GPU-8f7c6b1e"}) == 0
