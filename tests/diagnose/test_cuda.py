"""CUDA runtime of each library against the driver, and cuDNN needs, from recorded torch and loader answers."""

from __future__ import annotations

from tests.diagnose.fakes import cpu_profile, gpu_profile
from ttspilot.diagnose.cuda import check_cuda_runtime, check_cudnn, compare_runtime, run_probe
from ttspilot.diagnose.libraries import GpuLibraries, OrtBuild
from ttspilot.diagnose.result import Status

NO_LIBS = GpuLibraries(OrtBuild("onnxruntime", "1.31.1", None), None, None, None, None, None)
ORT_GPU_12 = GpuLibraries(OrtBuild("onnxruntime-gpu", "1.20.1", "12.2"), None, None, None, None, None)
TORCH_CU121 = GpuLibraries(OrtBuild("onnxruntime", "1.31.1", None), "2.3.1", "12.1", 8, None, None)

# What probes.py prints for torch 2.3.1+cu121 on a working RTX 4090, and on a 470 driver (CUDA 11.4).
TORCH_OK = {"version": "2.3.1+cu121", "cuda": "12.1", "cudnn": 8902, "is_available": True, "device_count": 1,
            "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"], "warnings": []}
TORCH_OLD_DRIVER = {**TORCH_OK, "is_available": False, "device_count": 0, "warnings": [
    "CUDA initialization: The NVIDIA driver on your system is too old (found version 11040). Please update your "
    "GPU driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx"]}


class FakeTorchProbe:
    def __init__(self, answer: dict):
        self.answer = answer
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        return self.answer


def test_compare_runtime_major_minor_and_same():
    assert compare_runtime("lib", "12.1", "11.4").status is Status.FAIL
    assert "525.60.13" in compare_runtime("lib", "12.1", "11.4").fix
    assert compare_runtime("lib", "12.6", "12.4").status is Status.WARN
    assert compare_runtime("lib", "12.1", "12.4").status is Status.PASS


def test_cpu_machine_without_cuda_libraries_is_a_skip():
    probe = FakeTorchProbe({})
    finding = check_cuda_runtime(cpu_profile(), NO_LIBS, torch_probe=probe)
    assert finding.status is Status.SKIP and "no CUDA runtime installed" in finding.detail
    assert probe.calls == 0  # torch absent: nothing imported


def test_gpu_without_any_cuda_library_warns():
    finding = check_cuda_runtime(gpu_profile(providers=("CPUExecutionProvider",)), NO_LIBS)
    assert finding.status is Status.WARN and "onnxruntime-gpu" in finding.fix


def test_onnxruntime_built_for_a_newer_cuda_than_the_driver_fails():
    finding = check_cuda_runtime(gpu_profile(driver="470.82.01", cuda_driver="11.4"), ORT_GPU_12)
    assert finding.status is Status.FAIL
    assert "onnxruntime-gpu 1.20.1: built for CUDA 12.2, driver supports CUDA 11.4" in finding.detail
    assert "525.60.13" in finding.fix


def test_torch_with_cuda_working():
    finding = check_cuda_runtime(gpu_profile(torch_cuda="12.1"), TORCH_CU121, torch_probe=FakeTorchProbe(TORCH_OK))
    assert finding.status is Status.PASS
    assert "torch 2.3.1+cu121: CUDA 12.1, cuDNN 8902" in finding.detail
    assert "is_available() on 1 GPU(s)" in finding.detail
    assert finding.data["torch_cudnn_major"] == 8


def test_torch_cuda_unavailable_on_an_old_driver_explains_and_fixes():
    finding = check_cuda_runtime(gpu_profile(torch_cuda="12.1", driver="470.82.01", cuda_driver="11.4"), TORCH_CU121,
                                 torch_probe=FakeTorchProbe(TORCH_OLD_DRIVER))
    assert finding.status is Status.FAIL
    assert "is_available() is False" in finding.detail and "too old (found version 11040)" in finding.detail
    assert "upgrade the NVIDIA driver to >= 525.60.13" in finding.fix


def test_torch_without_kernels_for_a_blackwell_gpu():
    profile = gpu_profile("NVIDIA GeForce RTX 5090", 32.0, 30.0, (12, 0), torch_cuda="12.1")
    finding = check_cuda_runtime(profile, TORCH_CU121, torch_probe=FakeTorchProbe(TORCH_OK))
    assert finding.status is Status.FAIL and "no kernels for GPU 0" in finding.detail and "sm_120" in finding.detail
    assert "whl/cu128" in finding.fix


def test_torch_ptx_covers_a_newer_gpu():
    profile = gpu_profile("NVIDIA H100", 80.0, 79.0, (9, 0), torch_cuda="12.1")
    answer = {**TORCH_OK, "arch_list": ["sm_80", "compute_80"]}
    assert check_cuda_runtime(profile, TORCH_CU121, torch_probe=FakeTorchProbe(answer)).status is Status.PASS


def test_torch_broken_by_numpy_2():
    answer = {"import_error": "AttributeError: _ARRAY_API not found"}
    finding = check_cuda_runtime(gpu_profile(torch_cuda="12.1"), TORCH_CU121, torch_probe=FakeTorchProbe(answer))
    assert finding.status is Status.FAIL and finding.fix.startswith('pip install "numpy<2"')


def test_torch_cpu_build_with_a_gpu_warns_only_for_cosyvoice():
    libs = GpuLibraries(NO_LIBS.ort, "2.3.1", None, None, None, None)
    answer = {"version": "2.3.1+cpu", "cuda": None, "is_available": False, "arch_list": []}
    piper = check_cuda_runtime(gpu_profile(), libs, torch_probe=FakeTorchProbe(answer), engine="piper")
    cosy = check_cuda_runtime(gpu_profile(), libs, torch_probe=FakeTorchProbe(answer), engine="cosyvoice")
    assert piper.status is Status.PASS
    assert cosy.status is Status.WARN and "download.pytorch.org" in cosy.fix


def test_the_real_torch_probe_runs_in_a_child_process():
    assert "import_error" in run_probe("torch")  # torch is not installed on this machine


# --- cuDNN ---


def loader(loadable: dict[int, bool], copies: dict[int, list[str]] | None = None):
    def load(dirs):
        return {str(major): {"name": f"libcudnn.so.{major}", "loadable": ok,
                             **({} if ok else {"error": f"libcudnn.so.{major}: cannot open shared object file"}),
                             "copies": (copies or {}).get(major, [])}
                for major, ok in loadable.items()}
    return load


def test_onnxruntime_gpu_finds_cudnn_9():
    finding = check_cudnn(gpu_profile(), ORT_GPU_12, loader=loader({8: False, 9: True}), wheel_dirs=[])
    assert finding.status is Status.PASS
    assert "onnxruntime-gpu 1.20.1 (CUDA 12.2) needs cuDNN 9: libcudnn.so.9 loads" in finding.detail


def test_missing_cudnn_9_fails_with_the_install_command():
    finding = check_cudnn(gpu_profile(), ORT_GPU_12, loader=loader({8: True, 9: False}), wheel_dirs=[])
    assert finding.status is Status.FAIL
    assert "libcudnn.so.9: cannot open shared object file" in finding.detail
    assert 'pip install "nvidia-cudnn-cu12==9.*"' in finding.fix and "libcudnn9-cuda-12" in finding.fix


def test_cudnn_8_build_with_only_cudnn_9_installed_fails():
    libs = GpuLibraries(OrtBuild("onnxruntime-gpu", "1.18.0", "11.8"), None, None, None, None, None)
    finding = check_cudnn(gpu_profile(), libs, loader=loader({8: False, 9: True}), wheel_dirs=[])
    assert finding.status is Status.FAIL and "needs cuDNN 8" in finding.detail
    assert 'nvidia-cudnn-cu11==8.*' in finding.fix


def test_cudnn_only_in_a_pip_wheel_needs_ld_library_path():
    wheel = "/venv/lib/python3.11/site-packages/nvidia/cudnn/lib"
    load = loader({8: False, 9: False}, {9: [f"{wheel}/libcudnn.so.9"]})
    finding = check_cudnn(gpu_profile(), ORT_GPU_12, loader=load, wheel_dirs=[wheel])
    assert finding.status is Status.WARN
    assert finding.fix == f"export LD_LIBRARY_PATH={wheel}:$LD_LIBRARY_PATH"


def test_torch_loads_its_own_pip_cudnn():
    wheel = "/venv/site-packages/nvidia/cudnn/lib"
    finding = check_cudnn(gpu_profile(torch_cuda="12.1"), TORCH_CU121,
                          loader=loader({8: False, 9: False}, {8: [f"{wheel}/libcudnn.so.8"]}), wheel_dirs=[wheel])
    assert finding.status is Status.PASS and "torch loads its own copy" in finding.detail


def test_nothing_needs_cudnn_on_a_cpu_install():
    finding = check_cudnn(cpu_profile(), NO_LIBS, loader=loader({8: False, 9: False}), wheel_dirs=[])
    assert finding.status is Status.SKIP and "no installed library needs cuDNN" in finding.detail


def test_cudnn_needs_without_a_gpu_are_a_skip():
    finding = check_cudnn(cpu_profile(), ORT_GPU_12, loader=loader({8: False, 9: False}), wheel_dirs=[])
    assert finding.status is Status.SKIP and "no GPU" in finding.detail


def test_the_real_cudnn_probe_runs_in_a_child_process(tmp_path):
    answer = run_probe("cudnn", str(tmp_path))
    assert set(answer) == {"8", "9"} and answer["9"]["name"] == "libcudnn.so.9"
    assert answer["9"]["loadable"] is False and answer["9"]["copies"] == []
