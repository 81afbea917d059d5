"""Build ONNX Runtime sessions for a tier and report which acceleration is really active.

ONNX Runtime falls back to the CPU silently when a GPU provider cannot load, so the
report is taken from the session after creation, never from what was requested.

What each flag means for an ONNX voice (Piper):
- load_trt: the TensorRT execution provider, with its engine cache kept as a validated cache
  entry (`ort_tensorrt`), so pooled sessions and later starts load the engine instead of
  rebuilding it. FP16 then means TensorRT FP16 kernels.
- load_jit: the graph optimized ahead of time (`optimized_graph`). On the CPU this is always
  used when valid (the `cpu` tier included): it is the same computation, loaded faster. The
  first session builds it when the cache directory is writable.
- fp16 without TensorRT: reported inactive. The CUDA provider has no FP16 switch for an fp32
  graph, and the VITS graph is not converted to fp16 (unverified on a GPU; VITS flows are
  FP16-sensitive).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ttspilot.accel import gpu as gpu_probe
from ttspilot.accel.cache import CacheError, CacheKey, CacheOutcome
from ttspilot.accel.fingerprint import FileHasher, hasher_for, local_cpu_features, onnxruntime_version
from ttspilot.accel.optimized_graph import GRAPH_FILE, ensure_optimized_graph, graph_key
from ttspilot.accel.ort_tensorrt import ensure_engine_cache, ort_trt_key
from ttspilot.accel.preload import preload_gpu_libraries
from ttspilot.accel.providers import (
    CPU,
    CUDA,
    DEFAULT_TRT_WORKSPACE_BYTES,
    TRT,
    ProviderPlan,
    SessionSettings,
    ShapeProfile,
    apply_settings,
    cuda_options,
    piper_shape_profile,
    plan_providers,
    session_settings,
    tensorrt_options,
)
from ttspilot.config import OptimizationConfig, cache_dir_for

log = logging.getLogger("ttspilot.accel")

FP16_ON_CUDA_REASON = (
    "CUDA execution provider runs the fp32 graph as is (it has no FP16 switch); FP16 needs TensorRT (load_trt). "
    "The VITS graph is not converted to fp16: unverified on a GPU, and VITS flows are FP16-sensitive"
)


@dataclass(frozen=True)
class CacheUse:
    """The compiled artifact a session was opened from.

    status: hit (loaded a valid entry), built (none existed; built now), rebuilt (an invalid or
    foreign entry was replaced), unavailable (could not be used or built; see reason).
    """

    kind: str  # cpu-graph | cuda-graph | ort-trt
    path: Path | None
    status: str
    reason: str
    build_seconds: float = 0.0

    @property
    def used(self) -> bool:
        return self.status in ("hit", "built", "rebuilt")


@dataclass
class OpenedSession:
    session: ort.InferenceSession
    active_providers: list[str]
    load_seconds: float  # wall time of open_session, cache checks and any build included
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)  # flag -> {"active": bool, "reason": str}
    requested_providers: list[str] = field(default_factory=list)
    device: str = "cpu"  # where it really runs: "cuda" when a GPU provider is active
    cache: CacheUse | None = None
    decisions: list[str] = field(default_factory=list)  # the one-line log messages, in order


def voice_cache_dir(model_dir: Path | None, model_path: Path) -> Path:
    """The `cache_dir` the Piper engine passes to open_session for one voice: `<cache root>/<voice stem>/`.

    Every voice the server loads with `model_dir` (the embedded one included) caches under that
    server's root, so precompile_trt.py builds exactly where the server will look.
    """
    return cache_dir_for(model_dir) / Path(model_path).name.removesuffix(".onnx")


def cpu_threads(config: OptimizationConfig) -> int:
    """Intra-op threads per session on this machine (`OptimizationConfig.threads_per_session`)."""
    return config.threads_per_session(os.cpu_count() or 1)


def model_input_names(model_path: Path) -> list[str]:
    """The graph inputs of `model_path`; without the onnx package, a Piper voice's from its .onnx.json."""
    model_path = Path(model_path)
    try:
        import onnx
    except ImportError:
        voice_config = model_path.with_name(model_path.name + ".json")
        speakers = json.loads(voice_config.read_text(encoding="utf-8")).get("num_speakers", 1)
        return ["input", "input_lengths", "scales", *(["sid"] if speakers > 1 else [])]
    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers]


def session_flags(
    config: OptimizationConfig,
    plan: ProviderPlan,
    active: list[str],
    *,
    cache: CacheUse | None,
    trt_problem: str | None = None,
) -> dict[str, dict[str, Any]]:
    """What is really on, from the session's active providers and the cache it used. Pure."""
    trt_active = TRT in active
    cuda_active = CUDA in active
    on_gpu = trt_active or cuda_active
    why_cpu = plan.skipped.get(CUDA) or (
        "cpu tier" if config.device == "cpu" else f"{CUDA} did not load (see ONNX Runtime log)"
    )

    if not config.load_trt:
        load_trt = {"active": False, "reason": "not requested by tier"}
    elif trt_active:
        load_trt = {"active": True, "reason": f"{TRT} active"}
    else:
        reason = plan.skipped.get(TRT) or trt_problem or f"{TRT} requested but ONNX Runtime fell back (see its log)"
        load_trt = {"active": False, "reason": reason}

    if not config.fp16:
        fp16 = {"active": False, "reason": "not requested by tier"}
    elif trt_active:
        fp16 = {"active": True, "reason": "TensorRT FP16 kernels (trt_fp16_enable)"}
    elif cuda_active:
        fp16 = {"active": False, "reason": FP16_ON_CUDA_REASON}
    else:
        fp16 = {"active": False, "reason": f"runs on the CPU in fp32 ({why_cpu})"}

    if trt_active:
        if config.load_jit and cache is not None and cache.used:
            how = "loaded" if cache.status == "hit" else f"{cache.status} now"
            load_jit = {"active": True, "reason": f"TensorRT engine from cache {cache.path} ({how})"}
        elif config.load_jit:
            load_jit = {
                "active": False,
                "reason": f"TensorRT engine built in memory only: {cache.reason if cache else 'no cache'}",
            }
        else:
            load_jit = {"active": False, "reason": "not requested by tier"}
    elif not on_gpu or config.load_jit:
        if cache is not None and cache.used:
            verb = "loaded from cache" if cache.status == "hit" else f"{cache.status} and cached at"
            extra = "" if config.load_jit else " (on the CPU a valid optimized graph is always used)"
            load_jit = {"active": True, "reason": f"graph optimized ahead of time, {verb} {cache.path}{extra}"}
        else:
            load_jit = {"active": False, "reason": cache.reason if cache else "graph optimized at load time"}
    else:
        load_jit = {"active": False, "reason": "not requested by tier"}
    return {"load_trt": load_trt, "fp16": fp16, "load_jit": load_jit}


def _create(model_path: Path, settings: SessionSettings, providers: list) -> ort.InferenceSession:
    options = ort.SessionOptions()
    apply_settings(settings, options)
    return ort.InferenceSession(str(model_path), options, providers=providers)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _use(outcome: CacheOutcome) -> CacheUse:
    return CacheUse(outcome.key.kind, outcome.path, outcome.status, outcome.reason, outcome.build_seconds)


def artifact_kind(config: OptimizationConfig, plan: ProviderPlan) -> str | None:
    """The compiled artifact a session for `config` loads under `plan`; None: optimized online only."""
    if TRT in plan.names:
        return "ort-trt"
    if plan.device == "cpu":
        return "cpu-graph"
    return "cuda-graph" if config.load_jit else None


def artifact_key(
    kind: str,
    model_path: Path,
    source_sha256: str,
    *,
    config: OptimizationConfig,
    plan: ProviderPlan,
    compute_capability: str | None,
    trt_profile: ShapeProfile | None = None,
) -> CacheKey:
    """The cache key `open_session` uses for `kind`; precompile's --list compares entries against it."""
    if kind == "ort-trt":
        if not compute_capability:
            raise ValueError("GPU compute capability unknown (NVML unavailable), so the engine cache cannot be named")
        profile = trt_profile if trt_profile is not None else piper_shape_profile(model_input_names(model_path))
        return ort_trt_key(
            model_path,
            source_sha256,
            ort_version=onnxruntime_version(),
            tensorrt_version=gpu_probe.tensorrt_version(),
            compute_capability=compute_capability,
            fp16=config.fp16,
            profile=profile,
        )
    device = "cpu" if kind == "cpu-graph" else "cuda"
    return graph_key(
        model_path,
        source_sha256,
        device=device,
        ort_version=onnxruntime_version(),
        cpu=local_cpu_features(),
        providers=plan.names,
        compute_capability=compute_capability,
    )


class _Opener:
    """State of one open_session call: what was decided and why, in order.

    Not strict (serving): a cache or build problem is logged and the session is opened without
    that artifact. Strict (precompile): the problem is raised.
    """

    def __init__(
        self,
        model_path: Path,
        config: OptimizationConfig,
        cache_dir: Path,
        hasher: FileHasher | None,
        *,
        strict: bool,
        force: bool,
    ):
        self.model_path = Path(model_path)
        self.config = config
        self.cache_dir = Path(cache_dir)
        self.hasher = hasher or hasher_for(self.cache_dir)
        self.threads = cpu_threads(config)
        self.strict = strict
        self.force = force
        self.decisions: list[str] = []
        self._source_sha256: str | None = None

    def say(self, message: str, level: int = logging.INFO) -> None:
        line = f"{self.config.tier}: {message}"
        self.decisions.append(line)
        log.log(level, line)

    def give_up(self, exc: BaseException | None, message: str) -> None:
        """Warn why an artifact is not used (the tier runs slower without it); in strict mode raise instead."""
        if self.strict:
            if exc is not None:
                raise exc
            raise RuntimeError(message)
        self.say(message, logging.WARNING)

    @property
    def source_sha256(self) -> str:
        if self._source_sha256 is None:
            self._source_sha256 = self.hasher.sha256(self.model_path)
        return self._source_sha256

    def settings(self, device: str, stage: str) -> SessionSettings:
        return session_settings(
            device=device,
            threads=self.threads,
            stage=stage,
            optimized_model_filepath=GRAPH_FILE if stage == "build" else None,
        )

    def optimized(
        self, plan: ProviderPlan, compute_capability: str | None
    ) -> tuple[ort.InferenceSession | None, CacheUse]:
        """Open from the optimized-graph cache, building it when needed; (None, use) when it cannot be used."""
        kind = artifact_kind(self.config, plan) or "cuda-graph"
        device = plan.device
        try:
            key = artifact_key(
                kind,
                self.model_path,
                self.source_sha256,
                config=self.config,
                plan=plan,
                compute_capability=compute_capability,
            )
            outcome = ensure_optimized_graph(
                self.model_path,
                self.cache_dir,
                key,
                self.hasher,
                settings=self.settings(device, "build"),
                providers=plan.providers,
                required_provider=CUDA if device == "cuda" else None,
                force=self.force,
            )
        except Exception as exc:  # noqa: BLE001  (CacheError, OSError, or ONNX Runtime's types: no common base)
            reason = f"optimized graph cache unavailable: {_one_line(exc)}"
            self.give_up(exc, f"{reason}; optimizing online")
            return None, CacheUse(kind, None, "unavailable", reason)
        use = _use(outcome)
        if outcome.value is not None:
            session = outcome.value
            if outcome.status == "rebuilt":
                why = "forced" if outcome.reason == "forced" else f"previous entry not valid: {outcome.reason}"
                self.say(f"optimized graph rebuilt at {outcome.path} in {outcome.build_seconds:.1f} s ({why})")
            else:
                self.say(f"optimized graph cached at {outcome.path} (built in {outcome.build_seconds:.1f} s)")
            return session, use
        started = time.perf_counter()
        try:
            session = _create(outcome.path / GRAPH_FILE, self.settings(device, "cached"), plan.providers)
        except Exception as exc:  # noqa: BLE001  (ONNX Runtime's exception types share no base)
            reason = f"cached optimized graph {outcome.path} failed to load: {_one_line(exc)}"
            self.give_up(exc, f"{reason}; optimizing online")
            return None, CacheUse(kind, outcome.path, "unavailable", reason)
        self.say(f"optimized graph loaded from cache {outcome.path} ({time.perf_counter() - started:.2f} s)")
        return session, use

    def tensorrt(
        self, plan: ProviderPlan, compute_capability: str | None
    ) -> tuple[ort.InferenceSession | None, CacheUse | None, str | None]:
        """Open with the TensorRT provider on a validated engine cache; (None, use, problem) to fall back."""
        try:
            profile = piper_shape_profile(model_input_names(self.model_path))
            key = artifact_key(
                "ort-trt",
                self.model_path,
                self.source_sha256,
                config=self.config,
                plan=plan,
                compute_capability=compute_capability,
                trt_profile=profile,
            )
        except Exception as exc:  # noqa: BLE001  (unreadable model or voice config: serve without TensorRT)
            problem = f"TensorRT not used: {_one_line(exc)}"
            self.give_up(exc, problem)
            return None, None, problem

        def providers_at(cache_path: Path) -> list:
            trt = tensorrt_options(
                device_id=self.config.device_id,
                fp16=self.config.fp16,
                engine_cache_path=str(cache_path),
                timing_cache_path=str(cache_path),
                profile=profile,
                workspace_bytes=DEFAULT_TRT_WORKSPACE_BYTES,
            )
            return [(name, trt if name == TRT else opts) for name, opts in plan.providers]

        online = self.settings("cuda", "online")
        try:
            outcome = ensure_engine_cache(
                self.model_path,
                self.cache_dir,
                key,
                self.hasher,
                force=self.force,
                open_with_cache_dir=lambda path: _create(self.model_path, online, providers_at(path)),
            )
        except CacheError as exc:
            self.give_up(exc, f"TensorRT engine cache unavailable ({exc}); engine kept in memory only")
            in_memory = [
                (
                    name,
                    {**opts, "trt_engine_cache_enable": "False", "trt_timing_cache_enable": "False"}
                    if name == TRT
                    else opts,
                )
                for name, opts in providers_at(self.cache_dir)
            ]
            return _create(self.model_path, online, in_memory), CacheUse(key.kind, None, "unavailable", str(exc)), None
        except Exception as exc:  # noqa: BLE001  (the TensorRT build itself failed: fall back to CUDA)
            problem = f"TensorRT engine build failed: {_one_line(exc)}"
            self.give_up(exc, f"{problem}; falling back to {CUDA}")
            return None, None, problem
        if outcome.status == "rebuilt":
            why = "forced" if outcome.reason == "forced" else f"previous entry not valid: {outcome.reason}"
            self.say(f"TensorRT engine rebuilt at {outcome.path} in {outcome.build_seconds:.1f} s ({why})")
        elif outcome.built:
            self.say(f"TensorRT engine cached at {outcome.path} (built in {outcome.build_seconds:.1f} s)")
        started = time.perf_counter()
        session = _create(self.model_path, online, providers_at(outcome.path))
        if outcome.status == "hit":
            self.say(f"TensorRT engine loaded from cache {outcome.path} ({time.perf_counter() - started:.2f} s)")
        return session, _use(outcome), None


def open_session(
    model_path: Path,
    config: OptimizationConfig,
    cache_dir: Path,
    *,
    available_providers: list[str] | None = None,
    use_cache: bool = True,
    force: bool = False,
    strict: bool = False,
    hasher: FileHasher | None = None,
) -> OpenedSession:
    """Open one session for `model_path` as the tier asks, on the CPU when no GPU provider is present.

    Call it once per pooled session: the first call builds any missing compiled artifact
    under `cache_dir` (file-locked, so concurrent starts build it once), later calls load it.
    The TensorRT shape profile is the Piper voice profile read from the model's inputs.
    `force` rebuilds the artifact; `strict` raises cache and build problems instead of
    opening without the artifact (precompile uses both; the server neither).
    """
    started = time.perf_counter()
    if config.device == "cuda":
        preload_gpu_libraries()  # before the first GPU session: pip-installed CUDA/cuDNN/TensorRT libraries
    opener = _Opener(model_path, config, cache_dir, hasher, strict=strict, force=force)
    available = list(ort.get_available_providers() if available_providers is None else available_providers)
    cuda = cuda_options(device_id=config.device_id)
    plan = plan_providers(config, available, cuda=cuda)
    requested = plan.names
    for reason in plan.skipped.values():
        opener.say(reason)

    compute_capability = None
    if plan.device == "cuda":
        device = gpu_probe.detect_gpu().device(config.device_id)
        compute_capability = device.compute_capability if device else None

    session: ort.InferenceSession | None = None
    cache: CacheUse | None = None
    trt_problem: str | None = None
    if TRT in plan.names:
        session, cache, trt_problem = opener.tensorrt(plan, compute_capability)
        if session is None:
            plan = ProviderPlan([p for p in plan.providers if p[0] != TRT], dict(plan.skipped))
    if session is None and use_cache and artifact_kind(config, plan) is not None:
        session, cache = opener.optimized(plan, compute_capability)
    if session is None:
        session = _create(opener.model_path, opener.settings(plan.device, "online"), plan.providers)

    active = session.get_providers()
    if plan.device == "cuda" and not any(p in active for p in (TRT, CUDA)):
        opener.give_up(
            None, f"GPU providers {', '.join(p for p in plan.names if p != CPU)} did not load; running on the CPU"
        )
    flags = session_flags(config, plan, active, cache=cache, trt_problem=trt_problem)
    return OpenedSession(
        session=session,
        active_providers=active,
        load_seconds=time.perf_counter() - started,
        flags=flags,
        requested_providers=requested,
        device="cuda" if any(p in active for p in (TRT, CUDA)) else "cpu",
        cache=cache,
        decisions=opener.decisions,
    )
