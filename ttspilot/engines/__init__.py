"""TTS engines behind one contract; the model folder's files say which engine loads it.

Adding an engine: one module that defines `ENGINE`, its `Engine` subclass, and one line in
`ENGINE_MODULES`. Modules are imported only when a folder is matched, so an engine whose
optional dependencies are missing just never matches.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ttspilot.config import OptimizationConfig
from ttspilot.engines.base import Engine, EngineLoadError, EngineSupport, LoadOptions

# Tried in order; the first also serves `model_dir=None` (the embedded voice).
ENGINE_MODULES: tuple[str, ...] = ("ttspilot.engines.piper", "ttspilot.engines.cosyvoice.engine")


def engine_class(model_dir: Path | None) -> type[Engine]:
    """The engine class for `model_dir`, chosen from its file names without loading a model."""
    if model_dir is not None and not model_dir.is_dir():
        raise EngineLoadError(f"model dir {model_dir} does not exist" if not model_dir.exists()
                              else f"model dir {model_dir} is not a directory")
    expected, unavailable = [], []
    for module_name in ENGINE_MODULES:
        try:
            engine: type[Engine] = importlib.import_module(module_name).ENGINE
        except ImportError as error:
            unavailable.append(f"{module_name.rsplit('.', 1)[-1]} unavailable: {error}")
            continue
        if model_dir is None or engine.recognises(model_dir):
            return engine
        expected.append(engine.expects)
    where = "the embedded voice" if model_dir is None else str(model_dir)
    found = f"expected {' or '.join(expected)}" if expected else "no engine is installed"
    raise EngineLoadError(f"no engine recognises {where}: {'; '.join([found, *unavailable])}")


def engine_support(model_dir: Path | None) -> EngineSupport:
    """What the engine for `model_dir` can honour (runtime, TRT/JIT/FP16), for planning tiers before loading."""
    return engine_class(model_dir).support_for(model_dir)


def load_engine(model_dir: Path | None, config: OptimizationConfig, options: LoadOptions = LoadOptions()) -> Engine:
    """Load the engine for `model_dir` (None: the embedded voice)."""
    return engine_class(model_dir).load(model_dir, config, options)
