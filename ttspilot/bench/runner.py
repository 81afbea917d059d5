"""Which configurations to measure, and running each in a fresh child process.

`--test_all` covers every combination of the TRT, JIT and FP16 flags on CUDA (the TRT ones
with trt_concurrent 1 and 2), plus `cpu` and `cpu+jit` (the CPU with the ahead-of-time
optimized graph). Configurations this machine or this model cannot run are listed as skipped
with the tier policy's reason; the rest run one after another, each in its own process.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from ttspilot.bench.measure import PROGRESS_PREFIX, Measurement, MeasureSpec
from ttspilot.config import OptimizationConfig, config_from_flags
from ttspilot.engines.base import EngineSupport
from ttspilot.hardware import HardwareProfile
from ttspilot.progress import progress_bar
from ttspilot.tiers import plan

CHILD_TIMEOUT_S = 3600.0  # a first TensorRT build alone can take many minutes
IMPORT_ROOT = Path(__file__).resolve().parents[2]  # holds ttspilot/: children import it from any working dir


@dataclass(frozen=True)
class BenchConfig:
    """One row of the benchmark: a configuration, and why it is skipped when it is."""

    config: OptimizationConfig
    skip_reason: str | None = None
    name: str | None = None  # the row's label when `config_label` would not tell it apart (a pool shape)

    @property
    def label(self) -> str:
        return self.name or config_label(self.config)


@dataclass(frozen=True)
class Outcome:
    """What became of one configuration: measured, skipped (with reason) or failed (with reason)."""

    bench: BenchConfig
    status: str  # ran | skipped | failed
    reason: str = ""
    measurement: Measurement | None = None


def config_label(config: OptimizationConfig) -> str:
    """Readable row names: "cpu", "cpu+jit", "basic", "jit+fp16", "trt+jit+fp16 x2"."""
    flags = [name for name, on in (("trt", config.load_trt), ("jit", config.load_jit), ("fp16", config.fp16)) if on]
    if config.device == "cpu":
        return "+".join(["cpu", *flags])
    name = "+".join(flags) or "basic"
    return f"{name} x{config.trt_concurrent}" if config.load_trt else name


def all_configurations() -> list[OptimizationConfig]:
    """The 8 flag combinations on CUDA (TRT ones at trt_concurrent 1 and 2), then cpu and cpu+jit."""
    configs = []
    for trt, jit, fp16 in itertools.product((True, False), repeat=3):
        for concurrent in (1, 2) if trt else (1,):
            configs.append(config_from_flags(load_trt=trt, load_jit=jit, fp16=fp16, trt_concurrent=concurrent,
                                             device="cuda"))
    return [*configs, config_from_flags("cpu"), config_from_flags(load_jit=True, device="cpu")]


def with_skip_reasons(
    configs: Iterable[OptimizationConfig], hardware: HardwareProfile, support: EngineSupport
) -> list[BenchConfig]:
    """Skip what the tier policy rules out here: every CUDA configuration without a usable GPU, named
    GPU tiers the policy skips (compute capability, libraries, free memory), and any configuration asking
    for a path the engine has none of for this model (JIT on CosyVoice3). Other configurations are tried:
    an engine that cannot honour them says why when it loads."""
    tier_plan = plan(hardware, support)
    skipped = {candidate.tier: candidate.reason.removeprefix("skipped, ") for candidate in tier_plan.skipped}
    no_gpu = next(iter(skipped.values()), "no usable GPU") if tier_plan.gpu is None else None
    rows = []
    for config in configs:
        lacking = "; ".join(engine_lacks(config, support)) or None
        if config.device == "cpu":
            rows.append(BenchConfig(config, lacking))
        elif tier_plan.gpu is None or config.tier in skipped:
            rows.append(BenchConfig(config, no_gpu or skipped[config.tier]))
        else:  # on the GPU the plan picked
            rows.append(BenchConfig(replace(config, device_id=tier_plan.gpu.index), lacking))
    return rows


def engine_lacks(config: OptimizationConfig, support: EngineSupport) -> list[str]:
    """The flags of `config` the engine has no path for, worded as the tier policy words them."""
    paths = (("TensorRT", config.load_trt, support.trt), ("JIT", config.load_jit, support.jit),
             ("FP16", config.fp16, support.fp16))
    lacks = [f"engine {support.name} has no {name} path" for name, wanted, present in paths if wanted and not present]
    if config.device == "cpu" and config.load_jit and support.jit and not support.jit_on_cpu:
        lacks.append(f"engine {support.name} runs JIT on CUDA only: the same as cpu here")
    return lacks


def run_all(bench_configs: list[BenchConfig], spec: MeasureSpec, work_dir: Path) -> list[Outcome]:
    """Run every configuration that is not skipped, one child at a time, under one progress bar."""
    outcomes = []
    with progress_bar(total=0, unit="step", desc="benchmark", dynamic_ncols=True) as bar:
        for bench in bench_configs:
            if bench.skip_reason:
                outcomes.append(Outcome(bench, "skipped", bench.skip_reason))
                continue
            bar.set_description(bench.label)
            child_spec = replace(spec, label=bench.label, config=bench.config,
                                 audio_dir=spec.audio_dir / bench.label.replace(" ", "_"))
            outcomes.append(run_child(bench, child_spec, work_dir, bar))
    return outcomes


def run_child(bench: BenchConfig, spec: MeasureSpec, work_dir: Path, bar: tqdm) -> Outcome:
    """One configuration in a fresh `python -m ttspilot.bench.measure`; its log is kept beside the results."""
    stem = work_dir / bench.label.replace(" ", "_")
    spec_path, result_path, log_path = (stem.with_suffix(suffix) for suffix in (".spec.json", ".result.json", ".log"))
    work_dir.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec.to_json())
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "ttspilot.bench.measure", str(spec_path), str(result_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))}
    timed_out = threading.Event()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        timer = threading.Timer(CHILD_TIMEOUT_S, lambda: (timed_out.set(), child.kill()))
        timer.start()
        try:
            for line in child.stdout or ():
                if line.startswith(PROGRESS_PREFIX):
                    _advance(bar, json.loads(line.removeprefix(PROGRESS_PREFIX)))
            code = child.wait()
        finally:
            timer.cancel()
    if timed_out.is_set():
        return Outcome(bench, "failed", f"killed after {CHILD_TIMEOUT_S:.0f} s without a result (log: {log_path})")
    if code != 0 or not result_path.is_file():
        why = f"measuring process exited with {code}: {_last_line(log_path)}"
        return Outcome(bench, "failed", f"{why} (log: {log_path})")
    measurement = Measurement.from_dict(json.loads(result_path.read_text()))
    if measurement.error:
        return Outcome(bench, "skipped", f"engine refused it: {measurement.error}", measurement)
    return Outcome(bench, "ran", measurement=measurement)


def _advance(bar: tqdm, message: dict) -> None:
    if "steps" in message:
        bar.total += message["steps"]
        bar.refresh()
    else:
        bar.set_postfix_str(message["step"])
        bar.update(1)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
