"""Make a tiny model with the maker's command line, run upstream `inference_sft` on it, print JSON.

Runs with the CosyVoice environment's python (the test venv has no torch):
    python tests/engines/cosyvoice/run_sft.py TREE VERSION MODEL_DIR TEXT
One process for both halves: importing torch and the official code is most of each one's time.
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


def main(tree: Path, version: str, model_dir: Path, text: str) -> None:
    import torch

    from ttspilot.engines.cosyvoice import tiny

    tiny.main(["--version", version, "--out", str(model_dir), "--cosyvoice_root", str(tree)])
    speaker = tiny.SPEAKER
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
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4])
