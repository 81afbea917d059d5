"""Export a CosyVoice folder's JIT zips and estimator ONNX in a process of its own, with CUDA hidden.

Upstream's model classes move to CUDA whenever they see it, and the exports are taken from the fp32
model on the CPU (engines/cosyvoice/exports.py), so precompile runs this with CUDA_VISIBLE_DEVICES
empty and keeps its own process free to build TensorRT plans on the GPU:

    python -m ttspilot.engines.cosyvoice.export_child --model_dir DIR [--cosyvoice_root TREE] [--force]

Prints one JSON object per file (ExportResult's fields); exits 1 with one line on stderr when it cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ttspilot.engines.base import EngineLoadError
from ttspilot.engines.cosyvoice.engine import CLASS_NAMES, import_upstream, model_version
from ttspilot.engines.cosyvoice.exports import ExportError, export_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--cosyvoice_root", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild our cache entries even when valid")
    args = parser.parse_args(argv)
    version = model_version(args.model_dir)
    if version is None:
        print(f"{args.model_dir} is not a CosyVoice model folder", file=sys.stderr)
        return 1
    try:
        cli = import_upstream(args.cosyvoice_root)
        build = getattr(cli, "AutoModel", None) or getattr(cli, CLASS_NAMES[version])
        model = build(model_dir=str(args.model_dir))  # no acceleration flags: the eager fp32 modules
        results = export_all(model, args.model_dir, version, force=args.force)
    except (EngineLoadError, ExportError) as error:
        print(str(error), file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001  (upstream's constructor or torch's exporter: one line for precompile)
        print(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}",
              file=sys.stderr)
        return 1
    for result in results:
        print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
