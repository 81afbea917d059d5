"""Optimization tiers and server settings: the one source of truth for every entry point.

The tier table is documented in docs/architecture.md ("Tiers"). Launchers, the server and the
benchmark all build their `OptimizationConfig` here, so a tier name means the same thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Device = Literal["cuda", "cpu"]


@dataclass(frozen=True)
class OptimizationConfig:
    """What an engine is asked to do; `Engine.info()` reports what it really did."""

    tier: str
    load_trt: bool = False
    load_jit: bool = False
    fp16: bool = False
    trt_concurrent: int = 1
    device: Device = "cpu"
    device_id: int = 0
    cpu_threads: int | None = None  # intra-op threads per session; None: see threads_per_session
    load_vllm: bool = False  # an extra on top of a GPU tier, for engines with a vLLM path (CosyVoice2/3)

    def as_dict(self) -> dict:
        return asdict(self)

    def threads_per_session(self, cores: int) -> int:
        """Intra-op threads of each pooled session: `cpu_threads` when set, else the cores split across the
        sessions on the CPU (so they do not oversubscribe it) and every core on a GPU tier."""
        if self.cpu_threads:
            return self.cpu_threads
        return max(1, cores // max(1, self.trt_concurrent if self.device == "cpu" else 1))

    def cli_args(self) -> list[str]:
        """The server flags that reproduce this configuration: a named tier with a pool shape of its own
        gives `--tier cpu --trt_concurrent 2 --cpu_threads 1`."""
        vllm = ["--load_vllm"] if self.load_vllm else []
        sessions = ["--trt_concurrent", str(self.trt_concurrent)]
        threads = ["--cpu_threads", str(self.cpu_threads)] if self.cpu_threads else []
        tier = TIERS.get(self.tier)
        if tier is not None and tier == replace(self, trt_concurrent=tier.trt_concurrent, cpu_threads=None,
                                                device_id=0, load_vllm=False):
            return ["--tier", self.tier, *(sessions if self.trt_concurrent != tier.trt_concurrent else []),
                    *threads, *vllm]
        args = ["--device", self.device]
        args += [flag for flag, on in (("--load_trt", self.load_trt), ("--load_jit", self.load_jit), ("--fp16", self.fp16)) if on]
        return args + [*sessions, *threads, *vllm]


TIERS: dict[str, OptimizationConfig] = {
    "full": OptimizationConfig("full", load_trt=True, load_jit=True, fp16=True, trt_concurrent=2, device="cuda"),
    "trt_fp16": OptimizationConfig("trt_fp16", load_trt=True, load_jit=True, fp16=True, device="cuda"),
    "jit_fp16": OptimizationConfig("jit_fp16", load_jit=True, fp16=True, device="cuda"),
    "jit": OptimizationConfig("jit", load_jit=True, device="cuda"),
    "fp16": OptimizationConfig("fp16", fp16=True, device="cuda"),
    "basic": OptimizationConfig("basic", device="cuda"),
    "cpu": OptimizationConfig("cpu", device="cpu"),
}
FALLBACK_ORDER: tuple[str, ...] = tuple(TIERS)
GPU_TIERS: tuple[str, ...] = tuple(name for name, tier in TIERS.items() if tier.device == "cuda")


def config_from_flags(
    tier: str | None = None,
    *,
    load_trt: bool = False,
    load_jit: bool = False,
    fp16: bool = False,
    trt_concurrent: int | None = None,
    device: Device | None = None,
    device_id: int = 0,
    cpu_threads: int | None = None,
    load_vllm: bool = False,
) -> OptimizationConfig:
    """Build a config from `--tier NAME` or from the individual flags.

    With a tier, `trt_concurrent` and `cpu_threads` (the pool shape) override the tier's own and the tier keeps
    its name; its other flags win over the individual ones. Without a tier, flags that match a named tier take
    its name and anything else is named `custom`; no device means CUDA for GPU flags and the `cpu` tier for none.
    `load_vllm` rides on top of a GPU tier and keeps its name.
    """
    for name, value in (("trt_concurrent", trt_concurrent), ("cpu_threads", cpu_threads)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1")
    shape = {"cpu_threads": cpu_threads, "device_id": device_id, "load_vllm": load_vllm}
    if tier is not None:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; choose one of: {', '.join(TIERS)}")
        if load_vllm and TIERS[tier].device != "cuda":
            raise ValueError("--load_vllm needs a GPU tier: vLLM runs on CUDA only")
        return replace(TIERS[tier], trt_concurrent=trt_concurrent or TIERS[tier].trt_concurrent, **shape)
    if device is None:
        device = "cuda" if (load_trt or load_jit or fp16) else "cpu"
    wanted = OptimizationConfig("custom", load_trt, load_jit, fp16, trt_concurrent or 1, device)
    name = next((name for name, known in TIERS.items() if replace(known, tier="custom") == wanted), "custom")
    if load_vllm and device != "cuda":
        raise ValueError("--load_vllm needs a GPU tier: vLLM runs on CUDA only")
    return replace(wanted, tier=name, **shape)

MODEL_CACHE_DIR = ".ttspilot"


def default_cache_root() -> Path:
    """Where caches for the embedded voice live (models in a folder use <model_dir>/.ttspilot)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttspilot"


def cache_dir_for(model_dir: Path | None) -> Path:
    """Cache root of a server started with `model_dir`: `<model_dir>/.ttspilot`, or the user cache without one."""
    return default_cache_root() if model_dir is None else Path(model_dir) / MODEL_CACHE_DIR


class ServerSettings(BaseSettings):
    """Server settings; every field can also come from a TTSPILOT_* environment variable."""

    model_config = SettingsConfigDict(env_prefix="TTSPILOT_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0: every interface)")
    port: int = Field(default=9234, description="TCP port")
    grpc_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="TCP port for gRPC (upstream's cosyvoice.CosyVoice, ttspilot.v1.Speech, grpc.health.v1, "
        "reflection) on --host, in the same process; None: no gRPC",
    )
    model_dir: Path | None = Field(default=None, description="model folder; None: the embedded voice")
    output_sample_rate: int | None = Field(default=None, description="default output rate; None keeps the model's rate")
    max_text_length: int = Field(default=10_000, ge=1, description="longest accepted input text, in characters")
    segment_max_length: int = Field(default=80, ge=10, description="segment length the splitter aims for in streams")
    whole_segment_max_length: int = Field(
        default=160, ge=10,
        description="segment length for responses sent whole: nobody hears them before the end, so fewer, longer "
        "model calls serve more audio per second",
    )
    first_segment_max: int = Field(default=30, ge=10, description="first streamed segment is cut at a clause within this")
    scheduling: Literal["deadline", "fifo"] = Field(
        default="deadline",
        description="order of queued segments: deadline = the listener who runs out of audio first (a new "
        "request's first segment before audio a stream already holds); fifo = arrival order",
    )
    stats_window: int = Field(default=1000, ge=10, description="recent requests kept for percentiles")
    openai_voices: dict[str, str] = Field(
        default_factory=dict,
        description='OpenAI voice name -> voice id, e.g. {"alloy": "en_US-joe-medium"}; unmapped names use the default voice',
    )
    openai_sample_rate: int = Field(default=24000, description="rate of the OpenAI family's audio (OpenAI sends 24 kHz)")
    deploy_sample_rate: int = Field(default=16000, description="PCM rate of the deploy family unless --output_sample_rate")
    canary: bool = Field(default=True, description="ready only after the canary's audio passes; off: after warm-up")
    max_queue: int | None = Field(default=None, ge=1, description="synthesis requests admitted at once; None: 4 x workers")
    request_timeout: float = Field(
        default=120.0, gt=0, description="seconds one synthesis request may take, sending its audio included (504 after)"
    )
    write_timeout: float = Field(
        default=15.0, gt=0, description="seconds a client may leave sent audio unread before its request is cancelled"
    )
    header_timeout: float = Field(default=10.0, gt=0, description="seconds a client has to send its request headers")
    ws_ping_interval: float = Field(default=20.0, gt=0, description="seconds between WebSocket keepalive pings")
    ws_ping_timeout: float = Field(default=20.0, gt=0, description="seconds a WebSocket client has to answer a ping")
    call_max_chars: int = Field(
        default=200, ge=10,
        description="longest text handed to the model in one call, split or not: a call's memory grows with its text",
    )
    call_bytes_per_char: int = Field(
        default=1_500_000, ge=1,
        description="peak memory of one model call per character (Piper on CPU: 1.3 MB for prose, up to 7 MB for digits)",
    )
    memory_budget_mb: int | None = Field(
        default=None, ge=64, description="memory admitted requests may reserve, in MB; None: half the memory free at start"
    )
    max_body_bytes: int = Field(default=16 * 2**20, ge=1024, description="largest request body accepted (413 above)")
    max_ws_connections: int = Field(default=32, ge=1, description="concurrent WebSocket connections")
    api_key: str | None = Field(default=None, description="when set, every route but /health needs it")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS; empty: CORS off")
    shutdown_grace: int = Field(default=30, ge=0, description="seconds in-flight requests get after SIGTERM")
    cosyvoice_root: Path | None = Field(
        default=None, description="an official CosyVoice checkout (its root); None: an importable `cosyvoice` package"
    )
    voices: Path | None = Field(
        default=None, description='zero-shot voices to register at start: JSON [{"id", "wav", "text"}], wav relative to the file'
    )
    upload_dir: Path | None = Field(
        default=None,
        description="folder for prompt recordings uploaded with a request, each removed when its request ends; "
        "None: the system's temporary folder",
    )
    vllm_gpu_memory_utilization: float = Field(
        default=0.2, gt=0, le=1,
        description="share of GPU memory vLLM may take with --load_vllm (CosyVoice2/3; upstream's own load fixes 0.2)",
    )
    call_timeout: float = Field(
        default=120.0, gt=0,
        description="seconds one model call may go without producing audio; past it the request gets 504 and "
        "/health turns unhealthy until the call ends (a hung call never does: restart the server)",
    )
    benchmark_dir: Path = Field(
        default=Path("benchmarks"),
        description="where benchmark_performance.py writes (its --output_dir's parent); /benchmark/latest and the "
        "web page show the newest results there",
    )
    launch_token: str | None = Field(
        default=None,
        description="set by a launcher through TTSPILOT_LAUNCH_TOKEN; /health confirms it to whoever presents it",
    )
    launcher_pid: int | None = Field(
        default=None, description="set by a launcher through TTSPILOT_LAUNCHER_PID; the server ends when it does"
    )


LAUNCH_TOKEN_ENV = "TTSPILOT_LAUNCH_TOKEN"  # environment, not argv, so `ps` does not show it
LAUNCH_TOKEN_HEADER = "X-Launch-Token"
LAUNCHER_PID_ENV = "TTSPILOT_LAUNCHER_PID"
API_KEY_ENV = "TTSPILOT_API_KEY"
