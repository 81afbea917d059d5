"""Load a CosyVoice folder through our engine without and with --load_vllm; print what the gate test checks, as JSON.

Runs with the CosyVoice environment's python (the test venv has no torch):
    python tests/engines/cosyvoice/run_vllm_gate.py TREE MODEL_DIR
`vllm` and `cuda` say what this machine has, so the test knows whether the gate must refuse.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from ttspilot.config import config_from_flags
from ttspilot.engines import load_engine
from ttspilot.engines.base import EngineLoadError, LoadOptions


def vllm_flag(model_dir: Path, tier: str, tree: Path, load_vllm: bool) -> dict:
    """The engine's load_vllm flag after loading, or the load's refusal."""
    try:
        engine = load_engine(model_dir, config_from_flags(tier, load_vllm=load_vllm), LoadOptions(cosyvoice_root=tree))
    except EngineLoadError as error:
        return {"refused": error.reason}
    state = engine.info().flags["load_vllm"]
    return {"active": state.active, "reason": state.reason}


def main(tree: Path, model_dir: Path) -> None:
    import torch

    print(json.dumps({
        "vllm": importlib.util.find_spec("vllm") is not None,
        "cuda": torch.cuda.is_available(),
        "without": vllm_flag(model_dir, "cpu", tree, load_vllm=False),
        "with": vllm_flag(model_dir, "basic", tree, load_vllm=True),
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
