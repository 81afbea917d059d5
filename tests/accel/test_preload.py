"""The GPU library preload: what it reads from the process, what it loads, and that it runs before a GPU session.

The GPU build's real preload_dlls() runs in tests/test_gpu_install.py (its cached venv); here the CPU build.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime
import pytest

from ttspilot.accel import preload
from ttspilot.accel.onnx_session import open_session
from ttspilot.config import TIERS
from ttspilot.diagnose.preload_check import preload_finding
from ttspilot.diagnose.result import Status

MAPS = """\
7f00-7f10 r--p 00000000 fd:01 11 /venv/site-packages/nvidia/cudnn/lib/libcudnn.so.9
7f10-7f20 r-xp 00010000 fd:01 11 /venv/site-packages/nvidia/cudnn/lib/libcudnn.so.9
7f20-7f30 r--p 00000000 fd:01 12 /venv/site-packages/nvidia/cu13/lib/libcudart.so.13
7f30-7f40 r--p 00000000 fd:01 13 /venv/site-packages/tensorrt_libs/libnvinfer.so.10
7f40-7f50 r--p 00000000 fd:01 14 /usr/lib/x86_64-linux-gnu/libc.so.6
7f50-7f60 rw-p 00000000 00:00 0 [heap]
7f60-7f70 r--p 00000000 fd:01 15 /venv/site-packages/tensorrt_libs/libnvinfer_builder_resource.so.10.16.1
"""


def test_the_process_map_names_each_gpu_library_once_with_its_file() -> None:
    assert preload.mapped_libraries(MAPS) == {
        "libcudnn.so.9": "/venv/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        "libcudart.so.13": "/venv/site-packages/nvidia/cu13/lib/libcudart.so.13",
        "libnvinfer.so.10": "/venv/site-packages/tensorrt_libs/libnvinfer.so.10",
    }


def test_tensorrt_libraries_load_in_link_order_and_a_bad_file_is_named(tmp_path: Path) -> None:
    for name in ("libnvonnxparser.so.10", "libnvinfer_plugin.so.10", "libnvinfer.so.10", "libnvinfer.so.10.16.1",
                 "libnvinfer_lean.so.10", "libnvinfer_builder_resource.so.10.16.1"):
        (tmp_path / name).write_bytes(b"not an ELF file")
    files = preload.tensorrt_library_files(tmp_path)
    assert [f.name for f in files] == ["libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10"]
    problems = preload.load_tensorrt_libraries(tmp_path)
    assert len(problems) == 3 and problems[0].startswith("libnvinfer.so.10 failed to load: ")
    assert preload.load_tensorrt_libraries(tmp_path / "empty") == [f"no libnvinfer.so.* in {tmp_path / 'empty'}"]


def test_diagnose_warns_without_preload_dlls_and_names_the_version_to_install() -> None:
    old = preload.PreloadReport("1.20.1", cuda_build=True, preload_dlls=False,
                                problems=("onnxruntime 1.20.1 has no preload_dlls(): ...",))
    finding = preload_finding(old)
    assert finding.status == Status.WARN and ">=1.21" in finding.fix
    assert preload_finding(preload.preload_gpu_libraries()).status in (Status.SKIP, Status.PASS, Status.WARN)


def test_on_the_cpu_build_a_gpu_tier_preloads_first_and_loads_nothing(monkeypatch, caplog, voice_model,
                                                                      tmp_path) -> None:
    if any(p in onnxruntime.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        pytest.skip("this onnxruntime is a GPU build: tests/test_gpu_install.py covers it")
    monkeypatch.setattr(preload, "_report", None)
    caplog.set_level(logging.INFO, logger="ttspilot.accel")
    opened = open_session(voice_model, TIERS["basic"], tmp_path)
    messages = [record.getMessage() for record in caplog.records]
    skipped = f"GPU library preload skipped: onnxruntime {onnxruntime.__version__} is a CPU build"
    assert messages[0] == skipped and messages[1].startswith("basic: CUDAExecutionProvider not available")
    assert opened.device == "cpu"
    assert preload.preload_gpu_libraries() is preload.preload_gpu_libraries()  # once per process
    assert [record.getMessage() for record in caplog.records].count(skipped) == 1
