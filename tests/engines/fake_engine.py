"""FakeTorchEngine: a second engine registered in the tests, to show the registry, launcher and precompile
ask the engine for a folder instead of assuming Piper. It recognises `fake*.yaml` and refuses to load."""

from __future__ import annotations

from pathlib import Path

from ttspilot.config import OptimizationConfig
from ttspilot.engines.base import Engine, EngineCapabilities, EngineLoadError, EngineSupport


class FakeTorchEngine(Engine):
    name = "fake"
    support = EngineSupport(trt=False, jit=True, fp16=True, name=name, runtime="torch")
    expects = "a fake model (fake*.yaml)"
    capabilities = EngineCapabilities()

    @classmethod
    def recognises(cls, model_dir: Path) -> bool:
        return any(model_dir.glob("fake*.yaml"))

    @classmethod
    def model_files(cls, model_dir: Path | None) -> list[Path]:
        return sorted(model_dir.glob("fake*.yaml")) if model_dir is not None else []

    @classmethod
    def load(cls, model_dir: Path | None, config: OptimizationConfig) -> Engine:
        raise EngineLoadError("FakeTorchEngine never loads: planning must not need a loaded model")


ENGINE = FakeTorchEngine
