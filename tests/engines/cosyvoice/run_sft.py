"""Run upstream `inference_sft` on a model folder and print one JSON line of what came out.

Runs with the CosyVoice environment's python (the test venv has no torch):
    python tests/engines/cosyvoice/run_sft.py TREE MODEL_DIR SPEAKER TEXT
The first call warms up lazily built state; the second is the one timed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def load_model(model_dir: Path):
    """Through AutoModel where the tree has it, else the class the folder's config is named for."""
    from cosyvoice.cli import cosyvoice

    if hasattr(cosyvoice, "AutoModel"):
        return cosyvoice.AutoModel(model_dir=str(model_dir))
    config = next(model_dir.glob("cosyvoice*.yaml")).stem  # cosyvoice.yaml -> CosyVoice, cosyvoice2 -> CosyVoice2
    return getattr(cosyvoice, "CosyVoice" + config.removeprefix("cosyvoice"))(str(model_dir))


def main(tree: Path, model_dir: Path, speaker: str, text: str) -> None:
    import torch

    from ttspilot.engines.cosyvoice.upstream import upstream_on_path

    upstream_on_path(tree)
    started = time.perf_counter()
    model = load_model(model_dir)
    load_s = time.perf_counter() - started
    list(model.inference_sft(text, speaker, stream=False))
    started = time.perf_counter()
    outputs = list(model.inference_sft(text, speaker, stream=False))
    call_s = time.perf_counter() - started
    audio = torch.cat([output["tts_speech"] for output in outputs], dim=1)
    print(json.dumps({
        "model_class": type(model).__name__,
        "sample_rate": model.sample_rate,
        "shape": list(audio.shape),
        "finite": bool(torch.isfinite(audio).all()),
        "rms": float(audio.pow(2).mean().sqrt()) if audio.numel() else 0.0,
        "load_s": load_s,
        "call_s": call_s,
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
