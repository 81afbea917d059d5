"""The best tier's pool shapes, each measured in a fresh child under the same concurrent load.

After the tiers are measured, every shape of the best tier that fits the machine
(`pool_shape.candidate_shapes`) runs as its own `ttspilot.bench.measure` child in shape mode
(`MeasureSpec.shape_seconds`: `STREAMS` streamed requests of the long text at once). The figures go
into the table, results.json and the tuning profile, where the launcher picks one per `--objective`.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from ttspilot.bench.measure import MeasureSpec
from ttspilot.bench.runner import BenchConfig, Outcome, run_all
from ttspilot.config import OptimizationConfig
from ttspilot.hardware import HardwareProfile
from ttspilot.pool_shape import OBJECTIVES, STREAMS, PoolShape, ShapeChoice, ShapeMeasurement, candidate_shapes, choose
from ttspilot.server.stats import percentiles

QUICK_SHAPE_S, SHAPE_S = 6.0, 20.0  # seconds of concurrent load per shape


@dataclass(frozen=True)
class ShapeRow:
    shape: PoolShape
    status: str  # ran | skipped | failed
    reason: str = ""  # why skipped or failed
    measured: ShapeMeasurement | None = None
    ran_as: str = ""  # sessions x threads the engine reported (an engine may run fewer sessions than asked)


@dataclass(frozen=True)
class ShapeReport:
    tier: str
    seconds: float
    rows: tuple[ShapeRow, ...]
    choices: dict[str, ShapeChoice]  # objective -> its shape; empty when no shape ran

    @property
    def measured(self) -> tuple[ShapeMeasurement, ...]:
        return tuple(row.measured for row in self.rows if row.measured is not None)

    def as_dict(self) -> dict[str, Any]:
        """The results.json form."""
        return {
            "tier": self.tier, "streams": STREAMS, "seconds": self.seconds,
            "rows": [{**(asdict(row.measured) if row.measured else {}), **_named(row.shape), "status": row.status,
                      "reason": row.reason, "ran_as": row.ran_as} for row in self.rows],
            "choices": {objective: {**_named(choice.shape), "reason": choice.reason}
                        for objective, choice in self.choices.items()},
        }


def _named(shape: PoolShape) -> dict[str, Any]:
    return {"shape": str(shape), "sessions": shape.sessions, "threads": shape.threads}


def measure_shapes(
    config: OptimizationConfig, hardware: HardwareProfile, spec: MeasureSpec, work_dir: Path, seconds: float
) -> ShapeReport:
    """Run every candidate shape of `config`'s tier in its own child, one after another."""
    shapes = candidate_shapes(config, hardware)
    benches = [BenchConfig(shape.applied(config), name=f"{config.tier} shape {shape.short}") for shape in shapes]
    outcomes = run_all(benches, replace(spec, shape_seconds=seconds), work_dir)
    rows = tuple(_row(shape, outcome) for shape, outcome in zip(shapes, outcomes))
    measured = [row.measured for row in rows if row.measured is not None]
    choices = {objective: choose(measured, objective) for objective in OBJECTIVES} if measured else {}
    return ShapeReport(config.tier, seconds, rows, choices)


def _row(shape: PoolShape, outcome: Outcome) -> ShapeRow:
    measurement = outcome.measurement
    if outcome.status != "ran" or measurement is None or measurement.streams is None:
        return ShapeRow(shape, outcome.status, outcome.reason or "no figures")
    load = measurement.streams
    info = measurement.engine_info
    first_audio = percentiles(load.first_audio_s)
    if first_audio is None:
        return ShapeRow(shape, "failed", "no request got its first audio")
    figures = ShapeMeasurement(
        shape,
        first_audio_p50_s=first_audio["p50"],
        first_audio_p95_s=first_audio["p95"],
        throughput=load.audio_s / load.wall_s,
        single_first_audio_s=statistics.median(load.single_first_audio_s),
        requests=len(load.first_audio_s),
        stall_max_s=max(load.stall_s, default=0.0),
    )
    ran_as = f"{info.concurrency} x {info.threads or '?'}" if info else ""
    return ShapeRow(shape, "ran", measured=figures, ran_as=ran_as)


def shape_lines(report: ShapeReport) -> list[str]:
    """The shape table and the choice per objective, for the operator."""
    headers = ["shape", "ran as", f"first audio p50 s @{STREAMS}", f"p95 s @{STREAMS}", f"audio s/s @{STREAMS}",
               f"stall max s @{STREAMS}", "first audio s @1", "requests", "status"]
    body = []
    for row in report.rows:
        m = row.measured
        figures = [m.first_audio_p50_s, m.first_audio_p95_s, m.throughput, m.stall_max_s, m.single_first_audio_s,
                   m.requests] if m else [None] * 6
        body.append([str(row.shape), row.ran_as, *figures, row.status if m else f"{row.status}: {row.reason}"])
    title = (f"pool shapes of {report.tier}: {STREAMS} streamed requests of the long text at once for "
             f"{report.seconds:g} s (@1: one client alone)")
    choices = [f"pool shape for {objective}: {choice.shape} -- {choice.reason}"
               for objective, choice in report.choices.items()]
    return [title, tabulate(body, headers=headers, floatfmt=".3g", missingval="-"),
            *(choices or [f"pool shape: none ran; the launcher keeps {report.tier}'s default"])]
