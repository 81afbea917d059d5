"""start_optimized_server.py: probe the hardware, plan the tiers, prebuild, start and supervise.

Each step says in one log line what it chose and why. A tier whose pool shapes the benchmark measured
(tuning profile) runs in the shape `--objective` picks from them (`pool_shape.choose`).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from ttspilot.config import TIERS, OptimizationConfig, default_cache_root
from ttspilot.engines import engine_class
from ttspilot.engines.base import Engine, EngineSupport
from ttspilot.hardware import HardwareProfile, cuda_device_id, describe, probe, simulated_gpu, with_simulated_gpus
from ttspilot.launcher.child import REPO_ROOT
from ttspilot.launcher.options import (
    add_launch_flags,
    cannot_launch,
    launch_options,
    server_load_paths,
    setup_logging,
)
from ttspilot.launcher.run import EXIT_CANNOT_LAUNCH, LaunchOptions, Supervisor, server_command
from ttspilot.pool_shape import OBJECTIVES, Objective, PoolShape, candidate_shapes, choose, default_shape
from ttspilot.scale.cli import add_ray_flags, print_serve_config, refused_with_ray, serve_on_ray
from ttspilot.tiers import Candidate, TierPlan, TuningProfile, plan, tuning_fingerprint

log = logging.getLogger("ttspilot.launcher")

PRECOMPILE_SCRIPT = REPO_ROOT / "precompile_trt.py"


def tuning_path(fingerprint: str, cache_root: Path | None = None) -> Path:
    """Where the benchmark leaves its measured verdict for this hardware fingerprint."""
    return (cache_root or default_cache_root()) / "tuning" / f"{fingerprint}.json"


def load_tuning(profile: HardwareProfile, support: EngineSupport, model_hash: str = "") -> TuningProfile | None:
    path = tuning_path(tuning_fingerprint(profile, support, model_hash))
    if not path.is_file():
        return None
    try:
        tuning = TuningProfile.load(path)
    except ValueError as error:
        log.warning("ignoring tuning profile: %s", error)
        return None
    log.info("tuning: using measured results from %s", path)
    return tuning


def tuned_plan(profile: HardwareProfile, support: EngineSupport, voice_hash: str,
               objective: Objective) -> tuple[TierPlan, list[str]]:
    """The plan with this machine's tuning profile, if any, and its candidates in their measured pool shapes, with
    one line per shape choice (`with_pool_shapes`); a Ray replica plans the same way (ttspilot/scale/)."""
    tuning = load_tuning(profile, support, voice_hash)
    tier_plan = plan(profile, support, tuning, model_hash=voice_hash)
    ours = tuning if tuning and tuning.fingerprint == tuning_fingerprint(profile, support, voice_hash) else None
    return with_pool_shapes(tier_plan, ours, objective, profile)


def with_pool_shapes(
    tier_plan: TierPlan, tuning: TuningProfile | None, objective: Objective, hardware: HardwareProfile
) -> tuple[TierPlan, list[str]]:
    """Each candidate whose tier has measured shapes that still fit here (GPU memory free today) runs in the one
    `objective` picks, and one line per such tier says which and why; the first tier without them keeps its
    default, and a line says so. `tuning` must be this machine's (same fingerprint)."""
    chosen: dict[str, PoolShape] = {}
    lines = []
    for number, tier in enumerate(dict.fromkeys(candidate.tier for candidate in tier_plan.candidates)):
        config = TIERS[tier]
        measured, created = (tuning.shapes.get(tier, ()), tuning.created) if tuning else ((), "")
        fitting = [m for m in measured if m.shape in candidate_shapes(config, hardware)]
        if fitting:
            choice = choose(fitting, objective)
            chosen[tier] = choice.shape
            lines.append(f"pool shape for {tier}: {choice.shape} (objective {objective}: {choice.reason}; "
                         f"measured {created})")
        elif number == 0:
            why = "no measured shape fits here now" if measured else "no measured shapes; run benchmark_performance.py"
            lines.append(f"pool shape for {tier}: the tier's default {default_shape(config, hardware.cpu_cores).short} "
                         f"({why})")
    candidates = tuple(replace(candidate, shape=chosen.get(candidate.tier)) for candidate in tier_plan.candidates)
    return replace(tier_plan, candidates=candidates), lines


def print_plan(profile: HardwareProfile, tier_plan: TierPlan, options: LaunchOptions, engine: type[Engine],
               model_dir: Path | None) -> None:
    """--dry_run: what would happen, including the exact server commands and what each asks of the engine."""
    print("hardware:")
    for line in describe(profile):
        print(f"  {line}")
    print("candidates, in order:")
    for number, candidate in enumerate(tier_plan.candidates, 1):
        print(f"  {number}. {candidate}")
        print(f"     $ {shlex.join(server_command(candidate, options))}")
        for line in recipe_lines(engine, model_dir, candidate.config):
            print(f"     {line}")
    if tier_plan.skipped or tier_plan.vllm_skipped:
        print("skipped:")
        for candidate in tier_plan.skipped:
            print(f"  - {candidate}")
        if tier_plan.vllm_skipped:
            print(f"  - vLLM: skipped, {tier_plan.vllm_skipped}")
    if tier_plan.tuning_note:
        print(f"tuning: {tier_plan.tuning_note}")


def recipe_lines(engine: type[Engine], model_dir: Path | None, config: OptimizationConfig) -> list[str]:
    """The engine's own options for `config`, then each file they make it open (present or missing here) and each
    tier flag it has no use for, with why; nothing is loaded."""
    recipe = engine.tier_recipe(model_dir, config)
    lines = [f"{engine.name}: " + " ".join(f"{flag}={value}" for flag, value in recipe.flags.items())]
    lines += [f"  {'present' if path.exists() else 'missing'}  {_shown(path, model_dir)}" for path in recipe.files]
    return lines + [f"  ignored  {flag}: {why}" for flag, why in recipe.ignored.items()]


def _shown(path: Path, model_dir: Path | None) -> str:
    """A model file by its name in the model folder, as upstream's docs name it; anything else in full."""
    return str(path.relative_to(model_dir)) if model_dir is not None and path.is_relative_to(model_dir) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Probe the hardware, pick the fastest tier that works, prebuild it, serve and supervise.",
        epilog="Unknown flags are passed to fastapi_server.py.",
    )
    add_launch_flags(parser)
    parser.add_argument("--dry_run", action="store_true", help="print the plan and the server command, then exit")
    parser.add_argument("--simulate_gpu", action="append", default=[], metavar="NAME:MEM_GB:CC",
                        help='plan for a GPU that is not here, e.g. "T4:16:7.5" (repeatable)')
    parser.add_argument("--precompile", action="store_true", help="rebuild the chosen tier's caches even if valid")
    parser.add_argument("--no_precompile", action="store_true", help="start without building caches")
    parser.add_argument("--benchmark", action="store_true",
                        help="benchmark the tiers (and the best one's pool shapes) first and use the result")
    parser.add_argument("--objective", choices=OBJECTIVES, default="balanced",
                        help="which measured pool shape (sessions x threads) a tier runs in: latency = soonest first "
                        "audio for one listener alone; at 4 concurrent streams, throughput = most audio seconds per "
                        "second, balanced = most audio per second whose first-audio p50 is within 1.5x of the lowest "
                        "(default: %(default)s); without measured shapes a tier keeps its default")
    add_ray_flags(parser)
    args, passthrough = parser.parse_known_args(argv)
    setup_logging()
    problem = cannot_launch(args, check_port=not args.dry_run, passthrough=passthrough)
    if problem is None and args.ray:
        problem = refused_with_ray(args, passthrough)
    if problem:
        log.error("%s", problem)
        return EXIT_CANNOT_LAUNCH
    options = launch_options(args, passthrough)

    profile = probe()
    if args.ray:
        return ray_launch(args, passthrough, len(profile.gpus))
    if args.simulate_gpu:
        try:
            profile = with_simulated_gpus(profile, [simulated_gpu(spec) for spec in args.simulate_gpu])
        except ValueError as error:
            parser.error(str(error))
    engine = engine_class(args.model_dir)  # cannot_launch checked that an engine serves the folder
    support = engine.support_for(args.model_dir)
    from ttspilot.bench.profile import model_hash  # imported here: ttspilot.bench imports this module

    voice_hash = model_hash(args.model_dir)
    if args.benchmark and not args.dry_run:
        from ttspilot.bench.cli import benchmark_for_launch, server_load_options

        benchmark_for_launch([candidate.tier for candidate in plan(profile, support).candidates if not candidate.vllm],
                             args.model_dir, server_load_options(*server_load_paths(passthrough)))
    tier_plan, shape_lines = tuned_plan(profile, support, voice_hash, args.objective)
    if tier_plan.gpu is not None:
        device_id = cuda_device_id(tier_plan.gpu.index)  # CUDA numbering, which CUDA_VISIBLE_DEVICES changes
        options = replace(options, server_args=(*options.server_args, "--device_id", str(device_id)))
    if args.dry_run:
        print_plan(profile, tier_plan, options, engine, args.model_dir)
        print("\n".join(shape_lines))
        return 0

    for line in describe(profile):
        log.info("hardware: %s", line)
    if tier_plan.tuning_note:
        log.info("tuning: %s", tier_plan.tuning_note)
    for line in shape_lines:
        log.info("%s", line)
    log_skipped(tier_plan.skipped)
    if tier_plan.vllm_skipped:
        log.info("plan: vLLM skipped, %s", tier_plan.vllm_skipped)
    for candidate in tier_plan.candidates:
        log.info("plan: try %s", candidate)
    first = tier_plan.candidates[0].tier
    if args.no_precompile:
        log.info("precompile: skipped (--no_precompile)")
    elif support.runtime != "onnxruntime" and not engine.tier_recipe(args.model_dir, TIERS[first]).files:
        log.info("precompile: nothing to build: %s opens no compiled file of engine %s", first, support.name)
    else:
        precompile(first, args.model_dir, force=args.precompile, in_process=support.runtime == "onnxruntime",
                   cosyvoice_root=server_load_paths(passthrough)[0])
    return Supervisor(options).run(tier_plan.candidates)


def ray_launch(args: argparse.Namespace, passthrough: list[str], gpus_here: int) -> int:
    """--ray: the replicas plan for themselves (ttspilot/scale/); this prints or deploys the Serve application."""
    if args.dry_run:
        print_serve_config(args, passthrough, gpus_here)
        return 0
    return serve_on_ray(args, passthrough, gpus_here)


def log_skipped(skipped: tuple[Candidate, ...]) -> None:
    """One plan line per skipped tier, or one for all of them when they share the reason."""
    reasons = {candidate.reason for candidate in skipped}
    if len(skipped) > 1 and len(reasons) == 1:
        log.info("plan: %s %s", ", ".join(c.tier for c in skipped), reasons.pop())
    else:
        for candidate in skipped:
            log.info("plan: %s", candidate)


def precompile(tier: str, model_dir: Path | None, force: bool, in_process: bool, cosyvoice_root: Path | None) -> None:
    """Build what the first tier needs before its server starts, so the server loads instead of compiling.

    Torch engines build in a child process: a CUDA context made here would hold GPU memory for the
    launcher's whole life, beside the server's.
    """
    from ttspilot.accel import precompile as builder

    args = ["--tier", tier, *(["--model_dir", str(model_dir)] if model_dir else []), *(["--force"] if force else [])]
    args += ["--cosyvoice_root", str(cosyvoice_root)] if cosyvoice_root else []
    started = time.monotonic()
    if in_process:
        code = builder.main(args)
    else:
        code = subprocess.run([sys.executable, str(PRECOMPILE_SCRIPT), *args]).returncode
    if code == 0:
        log.info("precompile: %s ready in %.1f s", tier, time.monotonic() - started)
    else:
        log.warning("precompile: %s failed (exit %d); the server will build or fall back by itself", tier, code)
