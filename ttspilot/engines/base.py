"""The engine contract every TTS backend implements (DESIGN.md section 3).

The server, the launchers and the benchmark only talk to this interface, so a new
backend is one new module and nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ttspilot.config import OptimizationConfig


class EngineError(Exception):
    """Base class for errors an engine reports to the server."""


class VoiceNotFound(EngineError):
    """The requested voice does not exist; the server answers 404 with the valid ids."""

    def __init__(self, voice: str, valid: list[str]):
        self.voice = voice
        self.valid = valid
        super().__init__(f"voice {voice!r} not found; valid voices: {', '.join(valid)}")


class UnsupportedFeature(EngineError):
    """The engine cannot do what was asked (zero-shot on Piper, ...); the server answers 400."""


class EngineLoadError(EngineError):
    """The engine could not load; `reason` is one line an operator can act on. Maps to 503."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str
    engine: str


@dataclass(frozen=True)
class EngineCapabilities:
    zero_shot: bool = False
    instruct: bool = False
    cross_lingual: bool = False
    streaming: bool = False  # audio chunks inside one sentence


class Engine(ABC):
    """A loaded TTS model. `synthesize` is called from worker threads, one call per segment."""

    name: str
    sample_rate: int
    capabilities: EngineCapabilities

    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path | None, config: OptimizationConfig) -> Engine:
        """Load the model; `model_dir=None` means the embedded voice."""

    @abstractmethod
    def voices(self) -> list[Voice]: ...

    @property
    @abstractmethod
    def default_voice(self) -> str: ...

    @property
    @abstractmethod
    def concurrency(self) -> int:
        """How many `synthesize` calls can run at once without sharing a session."""

    @abstractmethod
    def synthesize(self, text: str, voice: str, speed: float = 1.0, **opts: Any) -> Iterator[np.ndarray]:
        """Yield float32 mono chunks in [-1, 1] at `sample_rate`."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What is really active (providers, precision, caches), never what was merely asked for."""

    def resolve_voice(self, voice: str | None) -> str:
        """Return a valid voice id, or raise VoiceNotFound listing the valid ones."""
        if voice is None or voice == "":
            return self.default_voice
        ids = [v.id for v in self.voices()]
        if voice not in ids:
            raise VoiceNotFound(voice, ids)
        return voice
