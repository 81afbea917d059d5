"""Installed-library facts from metadata and files: versions, ONNX Runtime builds and the cuDNN they need."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttspilot.diagnose.libraries import (
    OrtBuild,
    cudnn_number_major,
    cudnn_wheel_dirs,
    installed_distributions,
    ort_build,
    ort_distributions,
    parse_build_info,
    tensorrt_cuda_major,
    torch_cudnn_major,
    version_tuple,
)


@pytest.mark.parametrize(("text", "parts"), [("1.18.0", (1, 18, 0)), ("2.3.1+cu121", (2, 3, 1)), ("12.4", (12, 4)),
                                             ("1.19.0rc1", (1, 19, 0)), ("10.13.3.9", (10, 13, 3, 9)), ("", ()),
                                             (None, ())])
def test_version_tuple(text, parts):
    assert version_tuple(text) == parts


@pytest.mark.parametrize(
    ("package", "version", "cuda", "cuda_major", "cudnn"),
    [
        ("onnxruntime", "1.31.1", None, None, None),
        ("onnxruntime-gpu", "1.16.3", "11.8", 11, 8),
        ("onnxruntime-gpu", "1.17.1", "12.2", 12, 8),
        ("onnxruntime-gpu", "1.18.1", "12.4", 12, 9),
        ("onnxruntime-gpu", "1.20.1", "12.2", 12, 9),
        ("onnxruntime-gpu", "1.20.1", "11.8", 11, 8),
        ("onnxruntime-gpu", "1.24.0", "13.0", 13, 9),
        ("onnxruntime-gpu", "1.18.0", None, 11, 8),  # no build info: PyPI's default build
        ("onnxruntime-gpu", "1.19.2", None, 12, 9),
    ],
)
def test_which_cudnn_an_onnxruntime_build_needs(package, version, cuda, cuda_major, cudnn):
    build = OrtBuild(package, version, cuda)
    assert (build.cuda_major, build.cudnn_major) == (cuda_major, cudnn)


def test_build_info_file_is_parsed_without_importing():
    text = "package_name = 'onnxruntime-gpu'\n__version__ = '1.20.1'\ncuda_version = '12.2'\ncudart_version = 12020\n"
    assert parse_build_info(text) == OrtBuild("onnxruntime-gpu", "1.20.1", "12.2")
    assert parse_build_info("package_name = 'onnxruntime'\n__version__ = '1.31.1'\n").cuda_version is None
    assert parse_build_info("nothing here") is None


def test_the_installed_build_here_is_the_cpu_one():
    build = ort_build()
    assert build is not None and build.package_name == "onnxruntime" and not build.is_cuda_build


def test_distribution_names_are_normalised_and_onnxruntime_builds_found():
    dists = installed_distributions()
    assert "onnxruntime" in dists and "nvidia-ml-py" in dists
    assert ort_distributions({"onnxruntime": "1", "onnxruntime-gpu": "1", "onnx": "1", "ort-nightly-gpu": "1",
                              "onnxruntime-extensions": "1"}) == {
        "onnxruntime": "1", "onnxruntime-gpu": "1", "ort-nightly-gpu": "1", "onnxruntime-extensions": "1"}


def test_tensorrt_and_torch_cuda_facts_from_metadata():
    assert tensorrt_cuda_major({"tensorrt": "10.13.3.9", "tensorrt-cu12": "10.13.3.9"}) == 12
    assert tensorrt_cuda_major({"tensorrt": "8.6.1"}) is None
    assert torch_cudnn_major(['nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux"', "filelock"]) == 9
    assert torch_cudnn_major(["nvidia-cudnn-cu12==8.9.2.26; platform_system == 'Linux'"]) == 8
    assert torch_cudnn_major(["filelock", "sympy"]) is None
    assert (cudnn_number_major(8902), cudnn_number_major(90100), cudnn_number_major(None)) == (8, 9, None)


def test_pip_cudnn_folders_are_found_on_the_path(tmp_path: Path):
    (tmp_path / "site" / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    assert cudnn_wheel_dirs([str(tmp_path / "site"), str(tmp_path / "other")]) == [
        str((tmp_path / "site" / "nvidia" / "cudnn" / "lib").resolve())]
