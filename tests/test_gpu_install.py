"""OPTIMIZATION.md's GPU install, run as written in a clean venv (cached by its recipe: tests/gpu_install_env.py).

Needs PyPI; skips loudly without it (a failed install with PyPI in reach fails the test). On a machine without a GPU the checks are what the install can prove here:
no conflicts, the GPU build with both GPU providers, the pip-installed libraries preloaded from the venv, and a
GPU tier that fails with our one-line reason while the launcher falls back to cpu.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gpu_install_env import REPO_ROOT, PyPIUnreachable, env_python, record, tensorrt_pin
from tests.launcher.launchers import Launcher
from tests.support import assert_speech, decode_wav, say

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.network]

EXPECTED_PIP_CHECK = re.compile(r"^piper-tts \S+ requires onnxruntime, which is not installed\.$")
GPU_TIERS_PLANNED = ("full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic")  # T4: every GPU tier is planned

DESCRIBE = """
import json, onnxruntime as ort
from ttspilot.accel.preload import preload_gpu_libraries
report = preload_gpu_libraries()
print(json.dumps({"version": ort.__version__, "package": ort.package_name, "cuda": ort.cuda_version,
                  "providers": ort.get_available_providers(), "preload_dlls": report.preload_dlls,
                  "loaded": [[lib.name, lib.path, lib.source] for lib in report.loaded],
                  "problems": list(report.problems)}))
"""


@pytest.fixture(scope="module")
def gpu_python(request: pytest.FixtureRequest) -> Path:
    try:
        return env_python(log=lambda line: say(request.config, line))
    except PyPIUnreachable as error:  # a failed install with PyPI in reach is a failure, not a skip
        reason = f"GPU install test SKIPPED: {error}"
        say(request.config, f"WARNING: {reason}")
        pytest.skip(reason)


def run(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def needed_majors(library: Path, name: str) -> set[int]:
    """The majors of `name` (libnvinfer, libcudart) a shared library links: its NEEDED strings, read from the file."""
    return {int(m) for m in re.findall(rb"\x00" + re.escape(name.encode()) + rb"\.so\.(\d+)\x00", library.read_bytes())}


def test_the_documented_install_resolves_to_the_gpu_build_and_preloads_its_libraries(
        gpu_python: Path, request: pytest.FixtureRequest) -> None:
    checked = run(gpu_python, "-m", "pip", "check")
    unexpected = [line for line in checked.stdout.splitlines() if not EXPECTED_PIP_CHECK.match(line)]
    assert unexpected == [], checked.stdout  # the one expected line is explained in OPTIMIZATION.md

    described = run(gpu_python, "-c", DESCRIBE)
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["package"] == "onnxruntime-gpu" and info["cuda"], info
    assert {"CUDAExecutionProvider", "TensorrtExecutionProvider"} <= set(info["providers"]), info
    assert info["preload_dlls"] and info["problems"] == [], info
    site = str(gpu_python.parent.parent)
    loaded = {name: (path, source) for name, path, source in info["loaded"]}
    cuda_major = info["cuda"].split(".")[0]
    for name in ("libcudnn.so.9", f"libcudart.so.{cuda_major}", f"libcublas.so.{cuda_major}"):
        path, source = loaded[name]
        assert path.startswith(site) and "/nvidia/" in path and source == "preload_dlls", (name, path, source)

    # requirements-tensorrt.txt installs what the TensorRT provider of this build links.
    pin_cuda, pin_trt = tensorrt_pin()
    provider = next((gpu_python.parent.parent / "lib").glob("python3*/site-packages/onnxruntime/capi/"
                                                                "libonnxruntime_providers_tensorrt.so"))
    assert needed_majors(provider, "libnvinfer") == {pin_trt}
    assert needed_majors(provider, "libcudart") == {pin_cuda} == {int(cuda_major)}
    skipped = record(gpu_python.parent.parent)["skipped"]
    if skipped:
        say(request.config, f"WARNING: GPU install test: TensorRT libraries not checked, step not run: {skipped}")
    else:
        assert loaded[f"libnvinfer.so.{pin_trt}"][1] == "tensorrt_libs", loaded


def test_without_a_gpu_each_gpu_tier_fails_with_our_reason_and_the_launcher_serves_on_cpu(
        gpu_python: Path, tmp_path: Path) -> None:
    # CUDA_VISIBLE_DEVICES="" hides any real GPU from CUDA, so this holds on a GPU machine too.
    launcher = Launcher("start_optimized_server.py", ["--simulate_gpu", "T4:16:7.5"], tmp_path / "launcher.log",
                        env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""}, python=gpu_python)
    try:
        launcher.wait_for(r"tier cpu: ready in", timeout=240)
        log = launcher.log()
        for tier in GPU_TIERS_PLANNED:
            failure = re.search(rf"tier {tier} failed: (.*)", log)
            assert failure, log[-4000:]
            assert failure.group(1).startswith(f"exited with code 3: engine failed to load: tier {tier} needs a GPU "
                                               "but ONNX Runtime runs on the CPU only ("), failure.group(1)
        # The libraries were preloaded before the first GPU session, in every server child.
        assert log.index("GPU library loaded: libcudnn.so.9 from ") < log.index("tier full failed")
        assert log.count("GPU library loaded: libcudnn.so.9 from ") == len(GPU_TIERS_PLANNED)
        text = "Served on the CPU after every GPU tier said why it could not load."
        response = httpx.get(launcher.url + "/inference_sft", params={"tts_text": text}, timeout=60)
        assert response.status_code == 200, response.text
        assert_speech(*decode_wav(response.content), text)
    finally:
        assert launcher.stop() == 0
