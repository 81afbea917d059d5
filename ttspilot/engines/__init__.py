"""TTS engines behind one contract; `load_engine` picks the engine a model folder needs."""

from __future__ import annotations

from pathlib import Path

from ttspilot.config import OptimizationConfig
from ttspilot.engines.base import Engine, EngineLoadError


def load_engine(model_dir: Path | None, config: OptimizationConfig) -> Engine:
    """Load the engine for `model_dir` (None: the embedded Piper voice)."""
    from ttspilot.engines.piper import PiperEngine, is_piper_model_dir

    if model_dir is None or is_piper_model_dir(model_dir):
        return PiperEngine.load(model_dir, config)
    if not model_dir.exists():
        raise EngineLoadError(f"model dir {model_dir} does not exist")
    raise EngineLoadError(f"no engine recognises {model_dir}: expected Piper voices (*.onnx + *.onnx.json)")
