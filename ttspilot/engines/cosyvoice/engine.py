"""The CosyVoice engine: the official code (v1, v2, v3), driven through its own model classes.

Class-level answers (which folders, which tiers) need neither torch nor the official code, so
the launcher and diagnose plan CosyVoice tiers in the light default install. `load` puts the
checkout on `sys.path` (`--cosyvoice_root`), builds the model through `AutoModel` or the class
for the version, and keeps what upstream leaves implicit explicit here: which flags really took
effect, which prompt form the tree takes, the `<|endofprompt|>` CosyVoice3 insists on, and the
streaming state upstream shares across requests (docs/architecture.md, "Engines").
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ttspilot.config import OptimizationConfig, cache_dir_for
from ttspilot.engines.base import (
    Artefact,
    Engine,
    EngineCapabilities,
    EngineInfo,
    EngineLoadError,
    EngineSupport,
    FlagState,
    LoadOptions,
    ModelReport,
    Style,
    TierRecipe,
    UnsupportedFeature,
    Voice,
    VoiceConflict,
    VoiceNotFound,
)
from ttspilot.engines.cosyvoice.acceleration import JIT_MODULES, ignored_flags, tier_files, upstream_flags
from ttspilot.engines.cosyvoice.artefacts import build_artefacts, list_artefacts
from ttspilot.engines.cosyvoice.preflight import prepare_tier
from ttspilot.engines.cosyvoice.prompt_audio import path_reading_problem, prompt_tensor, takes_path
from ttspilot.engines.cosyvoice.upstream import upstream_on_path
from ttspilot.engines.cosyvoice.vllm_loader import load_vllm, vllm_gate
from ttspilot.engines.cosyvoice.voice_store import (
    STORE_FOLDER,
    VoiceStore,
    check_voice_id,
    file_sha256,
    read_voices_file,
)

log = logging.getLogger(__name__)

CONFIG_FILES: dict[str, int] = {"cosyvoice.yaml": 1, "cosyvoice2.yaml": 2, "cosyvoice3.yaml": 3}
CLASS_NAMES: dict[int, str] = {1: "CosyVoice", 2: "CosyVoice2", 3: "CosyVoice3"}
END_OF_PROMPT = "<|endofprompt|>"
# CosyVoice3's LLM asserts token 151646 (<|endofprompt|>) is in the prompt or the text; upstream's
# examples put this system line before it.
V3_SYSTEM = "You are a helpful assistant."
CLONE = "https://github.com/FunAudioLLM/CosyVoice"
MISSING_CODE = (f"the CosyVoice code is not importable: git clone --recursive {CLONE}, pass --cosyvoice_root "
                "PATH (or TTSPILOT_COSYVOICE_ROOT) and pip install -r requirements-cosyvoice.txt")
ACCELERATION_FLAGS = ("load_jit", "load_trt", "fp16", "load_vllm")


def model_version(model_dir: Path) -> int | None:
    """1, 2 or 3 from the config file's name (upstream's AutoModel rule); None for another folder."""
    return next((version for name, version in CONFIG_FILES.items() if (model_dir / name).is_file()), None)


def import_upstream(root: Path | None) -> Any:
    if root is not None:
        try:
            upstream_on_path(root)
        except FileNotFoundError as error:
            raise EngineLoadError(f"--cosyvoice_root: {error}") from None
    try:
        import cosyvoice.cli.cosyvoice as cli
    except ImportError as error:
        missing = getattr(error, "name", None)
        if missing and not missing.startswith("cosyvoice"):
            raise EngineLoadError(f"the CosyVoice code needs {missing!r}: pip install -r requirements-cosyvoice.txt "
                                  f"({error})") from None
        raise EngineLoadError(MISSING_CODE) from None
    return cli


def _accepted(cls: type, wanted: dict[str, Any]) -> dict[str, Any]:
    """The constructor flags this class takes (CosyVoice3 has no load_jit, v1 no load_vllm)."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: value for name, value in wanted.items() if name in parameters}


def _join_llm_threads(running: set[threading.Thread]) -> None:
    """Wait for the LLM threads upstream started since `running` was taken.

    Upstream's `tts()` runs the LLM in a thread of its own (`llm_job`) and joins it only when the
    generator runs to its end. A stream closed early (its client left) leaves that thread generating
    into the shared LLM; the next call's LLM forward then fails in its own thread and that stream
    never ends. So the call ends, and its turn passes, only when its LLM thread has.
    """
    for thread in threading.enumerate():
        if thread not in running and thread.name.endswith("(llm_job)"):  # Thread(target=self.llm_job) names it so
            thread.join()


def _per_call_state(model: Any) -> dict[str, dict]:
    """Upstream's per-call dictionaries (tokens, flow and hift caches), keyed by a uuid made inside `tts()`."""
    return {name: value for name, value in vars(model).items() if name.endswith("_dict") and isinstance(value, dict)}


def _drop_abandoned_state(model: Any, before: dict[str, set]) -> None:
    """Remove what a call closed early left behind.

    Upstream's `tts()` removes its uuid's entries only after its last chunk, so every stream a client
    leaves would otherwise keep its tokens and caches for the life of the process. Calls run one at a
    time (`concurrency`), so after a call entries that were not there before it are that call's.
    """
    with model.lock:
        for name, table in _per_call_state(model).items():
            for key in set(table) - before.get(name, set()):
                del table[key]


class CosyVoiceEngine(Engine):
    name = "cosyvoice"
    support = EngineSupport(trt=True, jit=True, fp16=True, name=name, runtime="torch", jit_on_cpu=False)
    expects = "CosyVoice models (cosyvoice.yaml, cosyvoice2.yaml or cosyvoice3.yaml with llm.pt, flow.pt, hift.pt)"
    deterministic_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: Any, model_dir: Path, version: int, config: OptimizationConfig,
                 store: VoiceStore, load_seconds: float):
        self.model = model
        self.model_dir = model_dir
        self.version = version
        self.config = config
        self.store = store
        self.load_seconds = load_seconds
        self.sample_rate = int(model.sample_rate)
        instruct_v1 = version == 1 and "-Instruct" in model_dir.name  # upstream's own test for v1 instruct models
        self.capabilities = EngineCapabilities(
            zero_shot=True, cross_lingual=True, instruct=instruct_v1, instruct2=version >= 2, streaming=True,
            voice_registration=True,
        )
        self._prompt_as_path = takes_path(model)
        self.prompt_problem = path_reading_problem() if self._prompt_as_path else None
        if self.prompt_problem:
            log.warning("prompt recordings (zero-shot, cross-lingual, instruct2, POST /voices) will fail: %s",
                        self.prompt_problem)
        self._speakers = model.frontend.spk2info  # upstream's speaker table: SFT speakers and zero-shot features
        self._registered: dict[str, Path] = {}  # voice id -> stored prompt recording
        self._table = threading.Lock()
        # v2/v3 `tts()` (trees from 2026) grows `model.token_hop_len` on the shared model object during a stream and
        # never resets it, and reads it for the next stream's first chunk: streamed calls take turns
        # and each starts from the hop length the model was built with.
        self._initial_hop = getattr(model.model, "token_hop_len", None)
        self._stream_turn = threading.Lock() if self._initial_hop is not None else None

    # -- class level -------------------------------------------------------------------------

    @classmethod
    def recognises(cls, model_dir: Path) -> bool:
        return model_version(model_dir) is not None

    @classmethod
    def model_files(cls, model_dir: Path | None) -> list[Path]:
        if model_dir is None or model_version(model_dir) is None:
            raise EngineLoadError(f"no {cls.expects} in {model_dir}")
        config = next(model_dir / name for name in CONFIG_FILES if (model_dir / name).is_file())
        return [config, *(model_dir / f"{part}.pt" for part in ("llm", "flow", "hift"))]

    @classmethod
    def support_for(cls, model_dir: Path | None) -> EngineSupport:
        """CosyVoice3 has no JIT path; vLLM exists for v2 and v3 only."""
        version = model_version(model_dir) if model_dir is not None else None
        if version is None:
            return cls.support
        return replace(cls.support, jit=bool(JIT_MODULES[version]), vllm=version >= 2)

    @classmethod
    def tier_recipe(cls, model_dir: Path | None, config: OptimizationConfig) -> TierRecipe:
        version = model_version(model_dir) if model_dir is not None else None
        if version is None:
            return super().tier_recipe(model_dir, config)
        return TierRecipe(upstream_flags(version, config),
                          tuple(file.path(model_dir) for file in tier_files(version, config)),
                          ignored_flags(version, config))

    @classmethod
    def artefacts(cls, model_dir: Path | None, configs: Sequence[OptimizationConfig], options: LoadOptions, *,
                  build: bool, force: bool = False) -> list[Artefact]:
        version = model_version(model_dir) if model_dir is not None else None
        if version is None:
            raise EngineLoadError(f"no {cls.expects} in {model_dir}")
        device_id = configs[0].device_id if configs else 0
        if build:
            return build_artefacts(model_dir, version, configs, options, force=force, device_id=device_id)
        return list_artefacts(model_dir, version, configs, options, device_id)

    @classmethod
    def load(cls, model_dir: Path | None, config: OptimizationConfig, options: LoadOptions = LoadOptions()
             ) -> CosyVoiceEngine:
        if model_dir is None:
            raise EngineLoadError("CosyVoice needs --model_dir (a CosyVoice, CosyVoice2 or Fun-CosyVoice3 folder)")
        version = model_version(model_dir)
        if version is None:
            raise EngineLoadError(f"no {cls.expects} in {model_dir}")
        if config.load_vllm and not cls.support_for(model_dir).vllm:
            raise EngineLoadError(f"--load_vllm: {model_dir.name} is a CosyVoice v{version} model, which has no "
                                  "vLLM path (CosyVoice2 and 3 have one)")
        started = time.perf_counter()
        cli = import_upstream(options.cosyvoice_root)
        if config.load_vllm:
            vllm_gate()
        import torch

        if config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        prepare_tier(model_dir, version, config)
        model_class = getattr(cli, CLASS_NAMES[version], None)
        if model_class is None:
            raise EngineLoadError(f"{model_dir} is a CosyVoice{version} model, but this CosyVoice checkout has no "
                                  f"{CLASS_NAMES[version]} class: update it ({CLONE})")
        # vLLM is loaded below by our own code, with the operator's memory share (vllm_loader.py)
        flags = _accepted(model_class, upstream_flags(version, config) | {"load_vllm": False})
        build = getattr(cli, "AutoModel", model_class)  # AutoModel picks the same class from the same file names
        log.info("CosyVoice%s: loading %s through %s(%s)", "" if version == 1 else version, model_dir,
                 getattr(build, "__name__", "model"), ", ".join(f"{k}={v}" for k, v in flags.items()))
        try:
            model = build(model_dir=str(model_dir), **flags)
        except Exception as error:  # upstream raises ValueError/AssertionError/RuntimeError for a bad folder
            raise EngineLoadError(f"CosyVoice could not load {model_dir}: {type(error).__name__}: {error}") from None
        if config.load_vllm:
            load_vllm(model.model, model_dir, options.vllm_gpu_memory_utilization)
        store = VoiceStore(cache_dir_for(model_dir) / STORE_FOLDER, torch.save,
                           lambda path: torch.load(path, map_location="cpu", weights_only=True))
        engine = cls(model, model_dir, version, config, store, time.perf_counter() - started)
        engine._restore_voices()
        if options.voices_file is not None:
            engine._preload(options.voices_file)
        if not engine._speakers:
            raise EngineLoadError(f"{model_dir} has no built-in speakers (spk2info.pt) and no voice was registered: "
                                  "start with --voices FILE to register at least one zero-shot voice")
        return engine

    # -- voices ------------------------------------------------------------------------------

    def _restore_voices(self) -> None:
        restored = 0
        for voice in self.store:
            if voice.id in self._speakers and voice.id not in self._registered:
                log.warning("registered voice %s is shadowed by a built-in speaker of that name; ignored", voice.id)
                continue
            self._speakers[voice.id] = self.store.features(voice)
            self._registered[voice.id] = voice.wav
            restored += 1
        if restored:
            log.info("restored %d registered voice(s) from %s", restored, self.store.folder)

    def _preload(self, voices_file: Path) -> None:
        """Register each voice of the file once: a stored voice with the same recording and text is reused."""
        stored = {voice.id: voice for voice in self.store}
        for spec in read_voices_file(voices_file):
            known = stored.get(spec.id)
            if known and known.prompt_text == spec.text and known.wav_sha256 == file_sha256(spec.wav):
                continue
            if spec.id in self._speakers and spec.id not in self._registered:
                raise EngineLoadError(f"voices file {voices_file}: {spec.id!r} is a built-in speaker of the model")
            self._register(spec.id, spec.wav, spec.text)
            log.info("voice %s registered from %s", spec.id, spec.wav)

    def voices(self) -> list[Voice]:
        with self._table:
            return [Voice(speaker, speaker, "multilingual", self.name,
                          "registered" if speaker in self._registered else "builtin")
                    for speaker in self._speakers]

    @property
    def default_voice(self) -> str:
        builtin = [speaker for speaker in self._speakers if speaker not in self._registered]
        return (builtin or list(self._speakers))[0]

    def register_voice(self, voice_id: str, prompt_wav: Path, prompt_text: str) -> Voice:
        check_voice_id(voice_id)
        with self._table:
            if voice_id in self._speakers:
                kind = "registered" if voice_id in self._registered else "built-in"
                raise VoiceConflict(f"voice {voice_id!r} already exists ({kind}); delete it first or pick another id")
        self._register(voice_id, prompt_wav, prompt_text)
        return Voice(voice_id, voice_id, "multilingual", self.name, "registered")

    def _prompt(self, path: Path) -> Any:
        """The prompt argument the tree takes, a path or a 16 kHz tensor; 503 (EngineLoadError) when this
        install cannot read recordings."""
        if self.prompt_problem:
            raise EngineLoadError(f"prompt recordings cannot be read by this CosyVoice install: {self.prompt_problem}")
        return str(path) if self._prompt_as_path else prompt_tensor(path)

    def _register(self, voice_id: str, prompt_wav: Path, prompt_text: str) -> None:
        """Upstream's frontend computes the features (as its add_zero_shot_spk does); stored before it is served."""
        prompt_text = self._with_end_of_prompt(prompt_text)
        features = self.model.frontend.frontend_zero_shot("", prompt_text, self._prompt(prompt_wav), self.sample_rate, "")
        for key in ("text", "text_len"):
            features.pop(key, None)
        stored = self.store.put(voice_id, prompt_wav, prompt_text, features)
        with self._table:
            self._speakers[voice_id] = features
            self._registered[voice_id] = stored.wav

    def remove_voice(self, voice_id: str) -> None:
        with self._table:
            if voice_id not in self._speakers:
                raise VoiceNotFound(voice_id, list(self._speakers))
            if voice_id not in self._registered:
                raise VoiceConflict(f"voice {voice_id!r} is built into the model and cannot be deleted")
            del self._speakers[voice_id], self._registered[voice_id]
        self.store.remove(voice_id)

    @property
    def concurrency(self) -> int:
        """One call at a time: upstream's model object is shared, and torch already spreads one call over the cores."""
        return 1

    # -- synthesis ---------------------------------------------------------------------------

    def _with_end_of_prompt(self, prompt_text: str) -> str:
        """CosyVoice3 asserts `<|endofprompt|>` in its prompt; put upstream's system line before text without one."""
        if self.version < 3 or END_OF_PROMPT in prompt_text:
            return prompt_text
        return f"{V3_SYSTEM}{END_OF_PROMPT}{prompt_text}"

    def _v3_text(self, text: str) -> tuple[str, bool]:
        """(text, text_frontend) for v3 calls whose prompt carries no `<|endofprompt|>` (sft, cross-lingual).

        Upstream skips its text normalisation for text containing `<|...|>`, so normalise first, then mark.
        """
        if self.version < 3 or END_OF_PROMPT in text:
            return text, True
        normalised = self.model.frontend.text_normalize(text, split=False)
        return f"{V3_SYSTEM}{END_OF_PROMPT}{normalised}", False

    def _outputs(self, text: str, voice: str, style: Style, stream: bool, speed: float) -> Iterator[dict]:
        """The upstream generator for one call, chosen by mode and by what the voice is."""
        model = self.model
        zero_shot_voice = "embedding" not in self._speakers[voice]  # features of a prompt, not an SFT embedding
        common = {"stream": stream, "speed": speed}
        if style.mode == "sft" and not zero_shot_voice:
            text, frontend = self._v3_text(text)
            return model.inference_sft(text, voice, text_frontend=frontend, **common)
        if style.mode in ("sft", "zero_shot", "cross_lingual"):
            if style.prompt_wav is None and not zero_shot_voice:
                raise UnsupportedFeature(f"{style.mode.replace('_', '-')} needs prompt_wav or a registered voice; "
                                         f"{voice!r} is a built-in speaker")
            # upstream computes the features from the recording, or takes a stored speaker's by id
            prompt, speaker_id = ("", voice) if style.prompt_wav is None else (self._prompt(style.prompt_wav), "")
            if style.mode == "cross_lingual":
                text, frontend = self._v3_text(text)
                return model.inference_cross_lingual(text, prompt, zero_shot_spk_id=speaker_id, text_frontend=frontend,
                                                     **common)
            prompt_text = "" if style.prompt_wav is None else self._with_end_of_prompt(style.prompt_text)
            return model.inference_zero_shot(text, prompt_text, prompt, zero_shot_spk_id=speaker_id, **common)
        if style.mode == "instruct":
            if zero_shot_voice:
                raise UnsupportedFeature("instructions on CosyVoice v1 need a built-in (SFT) speaker")
            return model.inference_instruct(text, voice, style.instruct_text, **common)
        # instruct2: upstream ignores the instruction when given a stored speaker (its features carry
        # the registration transcript as prompt text), so a registered voice's recording is used instead.
        wav = style.prompt_wav or self._registered.get(voice)
        if wav is None:
            raise UnsupportedFeature("instructions on CosyVoice2/3 need prompt_wav or a registered voice")
        instruct = style.instruct_text
        if self.version >= 3 and END_OF_PROMPT not in instruct:
            instruct = f"{V3_SYSTEM} {instruct}{END_OF_PROMPT}"
        return model.inference_instruct2(text, instruct, self._prompt(wav), **common)

    def synthesize(self, text: str, voice: str, speed: float = 1.0, **opts: Any) -> Iterator[np.ndarray]:
        """Chunks as upstream yields them: one per sentence, or several per sentence when streaming.

        Upstream changes speed only on whole calls, so a stream at another speed runs whole calls.
        """
        style: Style = opts.get("style") or Style()
        voice = self.resolve_voice(voice)
        stream = bool(opts.get("stream")) and speed == 1.0
        turn = self._stream_turn if stream and self._stream_turn is not None else nullcontext()
        with turn:
            if stream and self._initial_hop is not None:
                self.model.model.token_hop_len = self._initial_hop
            running = set(threading.enumerate())
            state_before = {name: set(table) for name, table in _per_call_state(self.model.model).items()}
            outputs = self._outputs(text, voice, style, stream, speed)
            try:
                for output in outputs:
                    audio = output["tts_speech"].numpy().reshape(-1).astype(np.float32)
                    yield np.clip(audio, -1.0, 1.0)
            finally:
                close = getattr(outputs, "close", None)
                if close is not None:
                    close()
                _join_llm_threads(running)
                _drop_abandoned_state(self.model.model, state_before)

    def info(self) -> EngineInfo:
        import torch

        on_gpu = torch.cuda.is_available()
        model = self.model.model
        active = {
            "load_jit": isinstance(getattr(model.flow, "encoder", None), torch.jit.ScriptModule),
            "load_trt": "trt" in type(getattr(model.flow.decoder, "estimator", None)).__name__.lower(),
            # upstream keeps fp16=True on the CosyVoice object after turning it off without CUDA; the model's is real
            "fp16": bool(getattr(model, "fp16", False)) and on_gpu,
            "load_vllm": hasattr(model.llm, "vllm"),  # what upstream's LLM checks to take the vLLM path
        }
        wanted = {flag: getattr(self.config, flag) for flag in ACCELERATION_FLAGS}
        accepted = _accepted(type(self.model), dict(wanted))
        flags = {}
        for flag in ACCELERATION_FLAGS:
            if active[flag]:
                reason = "active"
            elif not wanted[flag]:
                reason = "not requested"
            elif flag not in accepted:
                reason = f"{type(self.model).__name__} has no {flag} option"
            elif not on_gpu:
                reason = "no CUDA device: upstream turns it off"
            else:
                reason = "upstream did not turn it on"
            flags[flag] = FlagState(active[flag], reason)
        return EngineInfo(
            engine=self.name,
            requested=self.config,
            device="cuda" if on_gpu else "cpu",
            providers=(f"torch-{'cuda' if on_gpu else 'cpu'}", type(self.model).__name__),
            flags=flags,
            concurrency=self.concurrency,
            sample_rate=self.sample_rate,
            voice_count=len(self._speakers),
            models=(ModelReport(self.model_dir.name, (round(self.load_seconds, 3),), None),),
            threads=torch.get_num_threads(),  # torch's intra-op pool, which --cpu_threads sets
        )


ENGINE = CosyVoiceEngine
