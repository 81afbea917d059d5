"""The engine contract every TTS backend implements (docs/architecture.md, "Engines").

The server, the launchers, precompile and the benchmark only talk to this interface, so a
new backend is one new module plus one line in `ttspilot.engines.ENGINE_MODULES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

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


class VoiceConflict(EngineError):
    """A voice id that is already taken, or a built-in voice that cannot be removed; the server answers 409."""


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
    kind: Literal["builtin", "registered"] = "builtin"  # registered: cloned from a prompt recording at run time


Mode = Literal["sft", "zero_shot", "cross_lingual", "instruct", "instruct2"]
Feature = Mode | Literal["voice_registration"]
FEATURE_NAMES: dict[str, str] = {
    "sft": "built-in voices", "zero_shot": "zero-shot voice cloning", "cross_lingual": "cross-lingual cloning",
    "instruct": "instructions with a built-in voice", "instruct2": "instructions with a voice prompt",
    "voice_registration": "registering voices",
}


def unsupported(feature: Feature, engine: str) -> UnsupportedFeature:
    """The one wording every family answers with (400) for what an engine cannot do."""
    return UnsupportedFeature(f"not supported by this engine: {FEATURE_NAMES[feature]} ({engine})")


@dataclass(frozen=True)
class Style:
    """How one call speaks beyond text and voice: CosyVoice's inference modes.

    `prompt_wav` is a file the server owns for the request's lifetime (checked: 16 kHz or more,
    1-30 s); `voice` of the call may instead name a registered voice, whose prompt is stored.
    """

    mode: Mode = "sft"
    prompt_text: str = ""
    prompt_wav: Path | None = None
    instruct_text: str = ""


@dataclass(frozen=True)
class EngineCapabilities:
    zero_shot: bool = False
    instruct: bool = False  # instruct text with a built-in voice (CosyVoice v1 -Instruct models)
    instruct2: bool = False  # instruct text with a prompt recording or registered voice (CosyVoice2/3)
    cross_lingual: bool = False
    streaming: bool = False  # audio chunks inside one sentence
    voice_registration: bool = False  # register_voice / remove_voice

    def supports(self, feature: Feature) -> bool:
        return feature == "sft" or bool(getattr(self, feature))

    def require(self, feature: Feature, engine: str) -> None:
        """Raise UnsupportedFeature (400) naming the mode or feature when this engine cannot do it."""
        if not self.supports(feature):
            raise unsupported(feature, engine)


@dataclass(frozen=True)
class LoadOptions:
    """What an engine needs besides the model folder and the tier; each engine reads the fields it knows."""

    cosyvoice_root: Path | None = None  # an official CosyVoice checkout; None: an importable `cosyvoice`
    voices_file: Path | None = None  # zero-shot voices to register at start (JSON list of id, wav, text)
    vllm_gpu_memory_utilization: float = 0.2  # share of GPU memory vLLM may take (load_vllm engines)


Runtime = Literal["onnxruntime", "torch", "any"]


@dataclass(frozen=True)
class EngineSupport:
    """Which tier flags an engine can honour, and through which runtime it reaches CUDA/TensorRT.

    Static (a class attribute), so the launcher, the benchmark and diagnose plan tiers without loading a model.
    """

    trt: bool
    jit: bool
    fp16: bool
    name: str
    runtime: Runtime = "any"
    vllm: bool = False  # a vLLM path for the LLM (OptimizationConfig.load_vllm)
    jit_on_cpu: bool = True  # load_jit does something without CUDA (Piper's optimized graph; not CosyVoice's JIT)


@dataclass(frozen=True)
class TierRecipe:
    """How an engine honours one tier: the options it passes to its own code and the files those load.

    For the dry run and precompile --list; nothing is loaded to answer. `files` are where the engine
    (or the code it drives) opens them; `ignored` names tier flags this model has no use for, with why.
    """

    flags: Mapping[str, Any]
    files: tuple[Path, ...] = ()
    ignored: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artefact:
    """One file a tier makes an engine open, as `precompile_trt.py` lists or builds it."""

    name: str
    kind: str  # torchscript | onnx | trt-plan | vllm | ...
    tiers: tuple[str, ...]  # the asked tiers that open it
    state: str  # listing: valid, missing, stale, corrupt, foreign, shipped, unchecked; building: what was done
    detail: str  # one line: why
    path: Path
    needs_gpu: bool = False  # not built for want of a GPU or its libraries (precompile exits 3 for asked tiers)
    failed: bool = False  # the build was tried and failed (precompile exits 1)


@dataclass(frozen=True)
class FlagState:
    """One tier flag as it really is after loading: on or off, and why."""

    active: bool
    reason: str


@dataclass(frozen=True)
class CompiledCache:
    """The compiled artifact a model was loaded from (or why none could be used)."""

    kind: str  # cpu-graph | cuda-graph | ort-trt | ...
    path: Path | None
    status: str  # hit | built | rebuilt | unavailable
    reason: str
    build_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": None if self.path is None else str(self.path), "status": self.status,
                "reason": self.reason, "build_seconds": self.build_seconds}


@dataclass(frozen=True)
class ModelReport:
    """One loaded model file: how long each pooled session took to open, and the cache the first one used."""

    name: str
    session_load_s: tuple[float, ...]
    cache: CompiledCache | None

    def as_dict(self) -> dict[str, Any]:
        return {"voice": self.name, "session_load_s": [round(s, 3) for s in self.session_load_s],
                "cache": None if self.cache is None else self.cache.as_dict()}


@dataclass(frozen=True)
class EngineInfo:
    """What a loaded engine really runs, never what was merely asked for (`requested`).

    `as_dict()` is the JSON shown as `effective_config` on /performance_info and kept by the
    benchmark; `from_dict` reads it back.
    """

    engine: str
    requested: OptimizationConfig
    device: str  # where it really runs: cuda | cpu
    providers: tuple[str, ...]
    flags: Mapping[str, FlagState]  # by OptimizationConfig field: load_trt, load_jit, fp16
    concurrency: int  # sessions in the pool: synthesize calls that run at once
    sample_rate: int
    voice_count: int
    models: tuple[ModelReport, ...] = ()
    threads: int | None = None  # intra-op threads each session really runs with, read back from the runtime

    @property
    def tier(self) -> str:
        return self.requested.tier

    def inactive(self) -> dict[str, str]:
        """flag -> why it is off, for the flags the configuration asked for and the engine could not turn on."""
        return {flag: state.reason for flag, state in self.flags.items()
                if not state.active and getattr(self.requested, flag, False)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "tier": self.tier,
            "requested": self.requested.as_dict(),
            "device": self.device,
            "providers": list(self.providers),
            "flags": {flag: {"active": state.active, "reason": state.reason} for flag, state in self.flags.items()},
            "trt_concurrent": self.concurrency,
            "cpu_threads": self.threads,
            "sample_rate": self.sample_rate,
            "voices": self.voice_count,
            "models": [model.as_dict() for model in self.models],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineInfo:
        """Inverse of `as_dict` (the benchmark's child process sends it as JSON)."""
        return cls(
            engine=data["engine"],
            requested=OptimizationConfig(**data["requested"]),
            device=data["device"],
            providers=tuple(data["providers"]),
            flags={flag: FlagState(state["active"], state["reason"]) for flag, state in data["flags"].items()},
            concurrency=int(data["trt_concurrent"]),
            threads=data.get("cpu_threads"),
            sample_rate=int(data["sample_rate"]),
            voice_count=int(data["voices"]),
            models=tuple(
                ModelReport(
                    model["voice"],
                    tuple(model["session_load_s"]),
                    None if model["cache"] is None else CompiledCache(
                        **model["cache"] | {"path": model["cache"]["path"] and Path(model["cache"]["path"])}
                    ),
                )
                for model in data.get("models", ())
            ),
        )


class Engine(ABC):
    """A loaded TTS model. `synthesize` is called from worker threads, one call per segment.

    The class-level part (`support`, `recognises`, `model_files`) answers without loading
    anything, so orchestrators can plan for a model folder before any model is loaded.
    """

    name: ClassVar[str]
    support: ClassVar[EngineSupport]
    expects: ClassVar[str]  # the folder layout it recognises, for error messages: "Piper voices (*.onnx ...)"
    # `synthesize` options that give the same audio for the same text every call (the benchmark's quality guard)
    deterministic_options: ClassVar[Mapping[str, Any]] = {}
    sample_rate: int
    capabilities: EngineCapabilities

    @classmethod
    @abstractmethod
    def recognises(cls, model_dir: Path) -> bool:
        """Whether `model_dir` holds this engine's model files; file names only, nothing is loaded."""

    @classmethod
    @abstractmethod
    def model_files(cls, model_dir: Path | None) -> list[Path]:
        """The model files a server started with `model_dir` loads, the default voice's first; nothing is loaded.

        Raises EngineLoadError when there are none (precompile builds for these, the tuning profile hashes the first).
        """

    @classmethod
    def support_for(cls, model_dir: Path | None) -> EngineSupport:
        """What this engine can honour for this model folder (a model version may lack a path); no loading."""
        return cls.support

    @classmethod
    def tier_recipe(cls, model_dir: Path | None, config: OptimizationConfig) -> TierRecipe:
        """The engine's own options and files for `config`; engines without files of their own keep this."""
        flags = {name: getattr(config, name) for name in ("load_trt", "load_jit", "fp16", "trt_concurrent")}
        return TierRecipe(flags)

    @classmethod
    def artefacts(cls, model_dir: Path | None, configs: Sequence[OptimizationConfig], options: LoadOptions, *,
                  build: bool, force: bool = False) -> list[Artefact]:
        """The files the tiers make this engine open, listed or (`build`) built where this machine can.

        For engines that build their own files (torch engines); ONNX Runtime engines' caches are built by
        `ttspilot.accel.precompile` through the same session code the server runs, and keep this default.
        """
        return []

    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path | None, config: OptimizationConfig, options: LoadOptions = LoadOptions()) -> Engine:
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
        """Yield float32 mono chunks in [-1, 1] at `sample_rate`.

        Options every engine receives: `style` (a `Style`; only engines whose capabilities allow its
        mode get anything but sft) and `stream` (the client wants first audio soon: engines that can
        yield chunks inside a sentence do). Others are engine-specific (`deterministic_options`).
        """

    @abstractmethod
    def info(self) -> EngineInfo:
        """What is really active (providers, precision, caches), never what was merely asked for."""

    def register_voice(self, voice_id: str, prompt_wav: Path, prompt_text: str) -> Voice:
        """Clone a voice from a recording and its exact transcript, kept across restarts; VoiceConflict if taken."""
        raise unsupported("voice_registration", self.name)

    def remove_voice(self, voice_id: str) -> None:
        """Forget a registered voice; VoiceNotFound if unknown, VoiceConflict for a built-in one."""
        raise unsupported("voice_registration", self.name)

    def resolve_voice(self, voice: str | None) -> str:
        """Return a valid voice id, or raise VoiceNotFound listing the valid ones."""
        if voice is None or voice == "":
            return self.default_voice
        ids = [v.id for v in self.voices()]
        if voice not in ids:
            raise VoiceNotFound(voice, ids)
        return voice
