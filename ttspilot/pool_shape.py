"""Pool shape: how many sessions synthesize at once, and on the CPU how many intra-op threads each has.

One tier runs in several shapes (`OptimizationConfig.trt_concurrent` sessions, `cpu_threads` threads each),
and no single one is best: on the CPU one session with every core finishes a lone sentence soonest, while
more sessions with fewer threads each serve concurrent streams with more audio per second. So the benchmark
measures the shapes that fit the machine under the same concurrent load (`STREAMS` streamed requests), and
the launcher picks one by the operator's objective (`choose`). Pure: no probing, no engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ttspilot.config import OptimizationConfig
from ttspilot.hardware import GB, HardwareProfile, best_gpu

Objective = Literal["latency", "throughput", "balanced"]
OBJECTIVES: tuple[Objective, ...] = ("latency", "throughput", "balanced")
CPU_SESSIONS: tuple[int, ...] = (1, 2, 4, 8)
GPU_SESSIONS: tuple[int, ...] = (1, 2, 4)
# GPU memory budgeted per pooled session: a budget, not a measurement. A shape that still runs out of memory
# fails its benchmark row and is never chosen; this only keeps shapes that cannot fit from being tried.
GPU_SESSION_GB = 2.0
STREAMS = 4  # concurrent streamed requests the shapes are compared at
BALANCED_SLACK = 1.5  # balanced: first audio p50 at most this times the lowest measured


@dataclass(frozen=True)
class PoolShape:
    sessions: int
    threads: int | None = None  # intra-op threads per session; None on GPU tiers (the runtime's default)

    def __str__(self) -> str:
        text = f"{self.sessions} session{'s' * (self.sessions != 1)}"
        return text if self.threads is None else f"{text} x {self.threads} thread{'s' * (self.threads != 1)}"

    @property
    def short(self) -> str:
        """"2 x 1" on the CPU, "2 sessions" on a GPU tier."""
        return str(self) if self.threads is None else f"{self.sessions} x {self.threads}"

    def applied(self, config: OptimizationConfig) -> OptimizationConfig:
        """`config` with this shape; the tier keeps its name (`cli_args`: `--tier T --trt_concurrent S ...`)."""
        return replace(config, trt_concurrent=self.sessions, cpu_threads=self.threads)


def default_shape(config: OptimizationConfig, cores: int) -> PoolShape:
    """The shape `config` runs in without a measured choice."""
    return PoolShape(config.trt_concurrent, config.threads_per_session(cores) if config.device == "cpu" else None)


def candidate_shapes(config: OptimizationConfig, hardware: HardwareProfile) -> list[PoolShape]:
    """The shapes worth measuring for `config` on `hardware`, fewest sessions first.

    CPU: every session count in `CPU_SESSIONS` up to the core count, each with cores // sessions threads, so
    sessions x threads uses every core once (2 cores: 1 x 2 and 2 x 1), then one single-thread session more
    than cores (2 cores: 3 x 1): oversubscribed, it computes while the others' requests are phonemized, split
    and encoded in Python, which served more audio per second against piper's server on 2 cores (see
    OPTIMIZATION.md, "Many listeners"). GPU tiers: the counts in
    `GPU_SESSIONS` whose sessions fit the free memory of the GPU the tiers run on (the one with the most
    free) at `GPU_SESSION_GB` each; counts up to the tier's own are always kept (the tier policy already
    gave the tier its memory).
    """
    if config.device == "cpu":
        cores = max(1, hardware.cpu_cores)
        fitting = [PoolShape(sessions, cores // sessions) for sessions in CPU_SESSIONS if sessions <= cores]
        return [*fitting, PoolShape(cores + 1, 1)]
    gpu = best_gpu(hardware)
    free_gb = gpu.memory_free / GB if gpu is not None else 0.0
    return [PoolShape(sessions) for sessions in GPU_SESSIONS
            if sessions <= config.trt_concurrent or sessions * GPU_SESSION_GB <= free_gb]


@dataclass(frozen=True)
class ShapeMeasurement:
    """One shape under `STREAMS` concurrent streamed requests of the long text, plus one client alone."""

    shape: PoolShape
    first_audio_p50_s: float  # over the requests of the concurrent load
    first_audio_p95_s: float
    throughput: float  # audio seconds per wall second under that load
    single_first_audio_s: float  # one client, the long text
    requests: int  # streamed requests the percentiles come from
    stall_max_s: float = 0.0  # the longest silence one of those streams' listeners heard after first audio

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeMeasurement:
        shape = data["shape"]
        return cls(PoolShape(int(shape["sessions"]), None if shape["threads"] is None else int(shape["threads"])),
                   float(data["first_audio_p50_s"]), float(data["first_audio_p95_s"]), float(data["throughput"]),
                   float(data["single_first_audio_s"]), int(data["requests"]), float(data.get("stall_max_s", 0.0)))


@dataclass(frozen=True)
class ShapeChoice:
    objective: Objective
    shape: PoolShape
    reason: str  # the figures that decided, e.g. "41.2 audio s/s, first audio p50 0.21 s at 4 streams, ..."


def choose(measurements: Sequence[ShapeMeasurement], objective: Objective) -> ShapeChoice:
    """The shape for `objective`.

    latency: the soonest first audio for one listener alone (ties: lower first-audio p50 at `STREAMS`
    streams, then higher throughput): an interactive box mostly serves one at a time; throughput: the highest
    audio seconds per second at `STREAMS` streams (ties: lower p50); balanced: the highest throughput among
    shapes whose p50 at `STREAMS` streams is within `BALANCED_SLACK` times the lowest. Raises ValueError
    without measurements.
    """
    if not measurements:
        raise ValueError("no measured shapes to choose from")
    lowest = min(m.first_audio_p50_s for m in measurements)
    if objective == "latency":
        pick = min(measurements, key=lambda m: (m.single_first_audio_s, m.first_audio_p50_s, -m.throughput))
        why = f"soonest first audio for one listener alone ({pick.single_first_audio_s:.2f} s)"
    elif objective == "throughput":
        pick = max(measurements, key=lambda m: (m.throughput, -m.first_audio_p50_s))
        why = "highest throughput"
    elif objective == "balanced":
        near = [m for m in measurements if m.first_audio_p50_s <= BALANCED_SLACK * lowest]
        pick = max(near, key=lambda m: (m.throughput, -m.first_audio_p50_s))
        why = f"highest throughput with first audio p50 within {BALANCED_SLACK:g}x of the lowest ({lowest:.2f} s)"
    else:
        raise ValueError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    reason = (f"{pick.throughput:.1f} audio s/s, first audio p50 {pick.first_audio_p50_s:.2f} s at {STREAMS} streams, "
              f"{why} of {len(measurements)} measured shape(s)")
    return ShapeChoice(objective, pick.shape, reason)
