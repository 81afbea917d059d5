"""Probes that must run in a fresh interpreter, one JSON object on stdout.

    python probes.py torch          # torch's CUDA build, cuDNN, is_available, arch list
    python probes.py cudnn [DIR...] # which libcudnn.so.N the dynamic loader can open

Why a separate process: importing torch costs seconds, may touch the GPU, and loads torch's
own cuDNN into the process; opening libcudnn with ctypes does the same. Either would make
a later ONNX Runtime check in the diagnose process pass only because the library happened
to be loaded already, hiding exactly the "libcudnn.so.9: cannot open shared object file"
failure the server would meet. This file imports nothing from ttspilot, so it runs by path.
"""

from __future__ import annotations

import ctypes
import json
import sys
import warnings
from pathlib import Path

CUDNN_MAJORS = (8, 9)


def probe_torch() -> dict:
    out: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import torch
        except Exception as exc:  # a broken install counts as a finding, not a crash
            return {"import_error": f"{type(exc).__name__}: {exc}"}
        out["version"] = str(torch.__version__)
        out["cuda"] = torch.version.cuda
        try:
            out["cudnn"] = torch.backends.cudnn.version()
        except Exception as exc:
            out["cudnn_error"] = f"{type(exc).__name__}: {exc}"
        try:
            out["is_available"] = bool(torch.cuda.is_available())
            out["device_count"] = int(torch.cuda.device_count())
        except Exception as exc:
            out["is_available"] = False
            out["cuda_error"] = f"{type(exc).__name__}: {exc}"
        try:
            out["arch_list"] = list(torch.cuda.get_arch_list())
        except Exception:
            out["arch_list"] = []
    out["warnings"] = [str(w.message).strip() for w in caught]
    return out


def probe_cudnn(extra_dirs: list[str]) -> dict:
    """For each cuDNN major: can the loader open it by name (as ONNX Runtime will), and is a copy in `extra_dirs`?"""
    found: dict = {}
    for major in CUDNN_MAJORS:
        name = f"libcudnn.so.{major}"
        entry: dict = {"name": name}
        try:
            ctypes.CDLL(name)
            entry["loadable"] = True
        except OSError as exc:
            entry["loadable"] = False
            entry["error"] = str(exc)
        entry["copies"] = [str(Path(d) / name) for d in extra_dirs if (Path(d) / name).is_file()]
        found[str(major)] = entry
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("torch", "cudnn"):
        print(json.dumps({"error": "usage: probes.py torch | cudnn [DIR...]"}))
        return 2
    result = probe_torch() if argv[0] == "torch" else probe_cudnn(argv[1:])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
