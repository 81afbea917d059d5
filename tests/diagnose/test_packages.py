"""Package pitfalls from recorded distribution lists."""

from __future__ import annotations

import pytest

from ttspilot.diagnose.libraries import OrtBuild
from ttspilot.diagnose.packages import check_numpy, check_onnxruntime_dists, check_transformers
from ttspilot.diagnose.result import Status


def test_numpy_2_with_onnxruntime_1_18_fails_with_array_api():
    finding = check_numpy({"numpy": "2.1.0", "onnxruntime-gpu": "1.18.0"})
    assert finding.status is Status.FAIL
    assert "_ARRAY_API not found" in finding.detail
    assert finding.fix == 'pip install "numpy<2" (or upgrade: pip install -U "onnxruntime-gpu>=1.19")'


@pytest.mark.parametrize("dists", [{"numpy": "2.1.0", "onnxruntime": "1.19.0"}, {"numpy": "1.26.4",
                                                                                   "onnxruntime-gpu": "1.18.0"}])
def test_compatible_numpy(dists):
    assert check_numpy(dists).status is Status.PASS


def test_numpy_missing_fails():
    assert check_numpy({}).status is Status.FAIL


def test_onnxruntime_and_onnxruntime_gpu_together_fail():
    finding = check_onnxruntime_dists({"onnxruntime": "1.20.1", "onnxruntime-gpu": "1.20.1", "numpy": "2"},
                                      OrtBuild("onnxruntime", "1.20.1", None), gpu_present=True)
    assert finding.status is Status.FAIL
    assert "overwrite each other's onnxruntime folder (it now holds onnxruntime 1.20.1)" in finding.detail
    assert finding.fix == "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def test_folder_left_over_from_another_build_fails():
    finding = check_onnxruntime_dists({"onnxruntime-gpu": "1.20.1"}, OrtBuild("onnxruntime", "1.19.0", None),
                                      gpu_present=True)
    assert finding.status is Status.FAIL and "--force-reinstall onnxruntime-gpu" in finding.fix


def test_single_build_passes_and_none_fails():
    assert check_onnxruntime_dists({"onnxruntime": "1.31.1"}, OrtBuild("onnxruntime", "1.31.1", None),
                                   gpu_present=False).status is Status.PASS
    none = check_onnxruntime_dists({}, None, gpu_present=False)
    assert none.status is Status.FAIL and none.fix == "pip install onnxruntime"


@pytest.mark.parametrize(
    ("version", "engine", "status"),
    [(None, "piper", Status.SKIP), ("4.36.2", "cosyvoice", Status.FAIL), ("4.36.2", "piper", Status.WARN),
     ("4.51.3", "cosyvoice", Status.PASS), ("4.57.1", "cosyvoice", Status.WARN), ("5.0.0", "cosyvoice", Status.WARN)],
)
def test_transformers_versions(version, engine, status):
    finding = check_transformers({"transformers": version} if version else {}, engine=engine)
    assert finding.status is status
    if status is not Status.PASS:
        assert "transformers==4.51.3" in finding.fix


def test_noisy_transformers_names_the_warning():
    assert "Sliding Window Attention" in check_transformers({"transformers": "4.57.1"}).detail
    assert "KeyError: 'qwen2'" in check_transformers({"transformers": "4.30.0"}, engine="cosyvoice").detail
