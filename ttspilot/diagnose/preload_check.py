"""The GPU library preload the server does before its first GPU session, run here the same way.

It runs before the ONNX Runtime provider checks, so they see the libraries the server would see.
"""

from __future__ import annotations

from ttspilot.accel.preload import PRELOAD_MIN_ORT, PreloadReport, preload_gpu_libraries
from ttspilot.diagnose.onnxruntime_check import import_onnxruntime
from ttspilot.diagnose.result import Finding, passed, skipped, warned


def preload_finding(report: PreloadReport) -> Finding:
    """PASS with the libraries and where they came from; WARN when something could not be preloaded. Pure."""
    data = {"ort_version": report.ort_version, "cuda_build": report.cuda_build, "preload_dlls": report.preload_dlls,
            "loaded": [{"name": lib.name, "path": lib.path, "source": lib.source} for lib in report.loaded],
            "problems": list(report.problems)}
    detail = "\n".join(report.lines)
    if report.skipped:
        return skipped(detail, "nothing to fix for the cpu tier; on a GPU machine see OPTIMIZATION.md, "
                               "\"GPU install\"", **data)
    if not report.preload_dlls:
        return warned(detail, f'pip install -U "onnxruntime-gpu[cuda,cudnn]>={PRELOAD_MIN_ORT}"', **data)
    if report.problems:
        return warned(detail, "pip install -r requirements-gpu.txt (and -r requirements-tensorrt.txt for the "
                              "TensorRT tiers), see the cudnn and ort_tensorrt checks", **data)
    return passed(detail, **data)


def check_gpu_preload() -> Finding:
    ort, error = import_onnxruntime()
    if ort is None:
        return skipped("onnxruntime does not import (see the onnxruntime check)", "fix the onnxruntime check first",
                       error=error)
    return preload_finding(preload_gpu_libraries())
