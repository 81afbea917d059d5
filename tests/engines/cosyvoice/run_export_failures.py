"""Exports that must fail, and leave no cache entry: a graph that computes something else than torch, a module
TorchScript cannot compile. Runs with the CosyVoice environment's python (torch, onnxruntime):
    python tests/engines/cosyvoice/run_export_failures.py CACHE_DIR
Prints one JSON line for test_exports_failures.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from ttspilot.accel.onnx_export import OnnxExportError, OnnxSignature, ensure_onnx
from ttspilot.accel.torchscript import ScriptExportError, ensure_script


class LengthBranch(torch.nn.Module):
    """Branches on the sequence length: tracing at 256 frames keeps one branch for every length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 100:
            return x * 2
        return x * 3


class Unscriptable(torch.nn.Module):
    def forward(self, *args: Any) -> Any:  # TorchScript compiles no variadic forward
        return args[0]


def failure(label: str, build) -> dict[str, Any]:
    try:
        build()
    except (OnnxExportError, ScriptExportError) as error:
        return {"error": type(error).__name__, "message": str(error)}
    return {"error": None, "message": f"{label} was built"}


def main(cache_dir: Path) -> None:
    source = cache_dir.parent / "weights.pt"
    source.write_bytes(b"weights")
    signature = OnnxSignature(("x",), ("y",), {"x": {2: "seq_len"}, "y": {2: "seq_len"}}, 18)
    seen = {
        "onnx": failure("onnx", lambda: ensure_onnx(
            LengthBranch(), source, cache_dir, lambda frames: (torch.rand(2, 4, frames),), signature, name="branch",
            code_sha256="0" * 64, export_length=256, check_lengths=(16, 300))),
        "script": failure("script", lambda: ensure_script(
            Unscriptable(), source, cache_dir, name="unscriptable", precision="fp32", code_sha256="0" * 64)),
    }
    seen["entries"] = sorted(str(p.relative_to(cache_dir)) for p in cache_dir.glob("*/*") if p.is_dir())
    print(json.dumps(seen))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
