"""benchmark_performance.py: measure tiers on this machine, or drive a running server.

    python benchmark_performance.py --test_all --quick       # every configuration, short run
    python benchmark_performance.py --tier jit_fp16          # one tier (plus the cpu reference)
    python benchmark_performance.py --model_dir CosyVoice2-0.5B --cosyvoice_root ~/CosyVoice   # a CosyVoice model
    python benchmark_performance.py --server http://127.0.0.1:9234 --api sft --concurrency 1 2 4 --duration 20

Without a configuration flag it measures the tiers start_optimized_server.py would try here,
which is what the tuning profile needs. Then the pool shapes of the best tier are measured
(`bench/shapes.py`; `--no_shapes` skips them) for the launcher's `--objective`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ttspilot.bench.load import LoadSpec, run_levels
from ttspilot.bench.measure import MeasureSpec
from ttspilot.bench.profile import ProfileOutcome, profile_fingerprint, save_profile
from ttspilot.bench.quality import REFERENCE_ORDER, assess
from ttspilot.bench.report import (
    Recommendation,
    Row,
    build_rows,
    first_audio_note,
    frame,
    load_table,
    reasons,
    recommend,
    table,
    write_chart,
    write_files,
)
from ttspilot.bench.runner import Outcome, all_configurations, run_all, with_skip_reasons
from ttspilot.bench.shapes import QUICK_SHAPE_S, SHAPE_S, ShapeReport, measure_shapes, shape_lines
from ttspilot.bench.texts import TEXT_SETS, read_texts
from ttspilot.config import TIERS, OptimizationConfig, ServerSettings, config_from_flags
from ttspilot.engines import engine_support
from ttspilot.engines.base import EngineLoadError, LoadOptions
from ttspilot.hardware import HardwareProfile, describe, probe
from ttspilot.tiers import plan

log = logging.getLogger("ttspilot.bench")

QUICK_REPEATS, REPEATS = 2, 5
QUICK_THROUGHPUT_S, THROUGHPUT_S = 2.0, 5.0


@dataclass(frozen=True)
class BenchOptions:
    configs: tuple[OptimizationConfig, ...] | None = None  # None: the tiers the launcher would try here
    repeats: int | None = None  # None: REPEATS, or QUICK_REPEATS with quick
    quick: bool = False
    texts: dict[str, str] | None = None  # None: the built-in set for the voice's language
    language: str = "auto"
    concurrency: tuple[int, ...] = (1, 2)
    output_dir: Path | None = None  # None: benchmarks/<timestamp>/
    model_dir: Path | None = None
    load: LoadOptions = LoadOptions()  # as the server takes them: --cosyvoice_root, --voices
    shapes: bool = True  # measure the best tier's pool shapes
    shape_seconds: float | None = None  # concurrent load per shape; None: SHAPE_S, or QUICK_SHAPE_S with quick


def server_load_options(cosyvoice_root: Path | None = None, voices: Path | None = None) -> LoadOptions:
    """The engine's load options as the server builds them: flags first, then its TTSPILOT_* environment."""
    settings = ServerSettings()
    return LoadOptions(cosyvoice_root or settings.cosyvoice_root, voices or settings.voices,
                       settings.vllm_gpu_memory_utilization)


@dataclass(frozen=True)
class BenchRun:
    rows: list[Row]
    reference: str | None
    sampled: bool  # the engine samples (no deterministic options): tiers were checked on their own audio only
    recommendation: Recommendation | None
    profile: ProfileOutcome
    files: list[Path]
    chart: str
    shapes: ShapeReport | None  # None: not measured, `shapes_note` says why
    shapes_note: str = ""


def default_output_dir() -> Path:
    return Path("benchmarks") / datetime.now().strftime("%Y%m%d-%H%M%S")


def run_benchmark(options: BenchOptions) -> BenchRun:
    """Measure, judge quality, recommend, write the files and the tuning profile.

    Raises EngineLoadError when no engine serves `options.model_dir`."""
    hardware = probe()
    support = engine_support(options.model_dir)
    configs = list(options.configs or [TIERS[c.tier] for c in plan(hardware, support).candidates if not c.vllm])
    if not any(config.tier in REFERENCE_ORDER for config in configs):
        configs.insert(0, TIERS["cpu"])  # the quality guard needs a reference to compare with
    output_dir = options.output_dir or default_output_dir()
    spec = MeasureSpec(
        label="", config=TIERS["cpu"], audio_dir=output_dir / "audio",
        repeats=options.repeats or (QUICK_REPEATS if options.quick else REPEATS),
        concurrency=options.concurrency, throughput_seconds=QUICK_THROUGHPUT_S if options.quick else THROUGHPUT_S,
        texts=options.texts, language=options.language, quick=options.quick, model_dir=options.model_dir,
        load=options.load,
    )
    outcomes = run_all(with_skip_reasons(configs, hardware, support), spec, output_dir / "runs")
    measured = [o.measurement for o in outcomes if o.status == "ran" and o.measurement]
    reference, verdicts = assess(measured)
    sampled = any(not measurement.deterministic for measurement in measured)
    rows = build_rows(outcomes, verdicts, reference)
    recommendation = recommend(rows)
    best = recommend(rows, launchable=True)
    shapes, shapes_note = best_tier_shapes(options, outcomes, best, hardware, spec, output_dir / "runs")
    profile = save_profile(rows, best, hardware, support, options.model_dir,
                           shapes={shapes.tier: shapes.measured} if shapes and shapes.measured else {})
    summary: dict[str, Any] = {
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "hardware": describe(hardware),
        "fingerprint": profile_fingerprint(hardware, support, options.model_dir),
        "options": {"repeats": spec.repeats, "quick": spec.quick, "concurrency": list(spec.concurrency),
                    "throughput_seconds": spec.throughput_seconds, "language": spec.language,
                    "texts": options.texts, "model_dir": spec.model_dir and str(spec.model_dir),
                    "cosyvoice_root": spec.load.cosyvoice_root and str(spec.load.cosyvoice_root),
                    "voices": spec.load.voices_file and str(spec.load.voices_file)},
        "reference": reference,
        "sampled_synthesis": sampled,
        "recommendation": recommendation and asdict(recommendation),
        "tuning_profile": {"path": profile.path and str(profile.path), "message": profile.message},
        "pool_shapes": shapes.as_dict() if shapes else {"skipped": shapes_note},
    }
    files = write_files(frame(rows), output_dir, "results", summary)
    chart = write_chart(rows, output_dir / "chart.png")
    return BenchRun(rows, reference, sampled, recommendation, profile, files, chart, shapes, shapes_note)


def best_tier_shapes(
    options: BenchOptions, outcomes: list[Outcome], best: Recommendation | None, hardware: HardwareProfile,
    spec: MeasureSpec, work_dir: Path,
) -> tuple[ShapeReport | None, str]:
    """The pool shapes of the tier the launcher would start first, or None and why they were not measured."""
    if not options.shapes:
        return None, "pool shapes not measured (--no_shapes)"
    if best is None:
        return None, "pool shapes not measured: no named tier ran and passed the quality check"
    config = next(outcome.bench.config for outcome in outcomes if outcome.bench.label == best.configuration)
    seconds = options.shape_seconds or (QUICK_SHAPE_S if options.quick else SHAPE_S)
    return measure_shapes(config, hardware, spec, work_dir, seconds), ""


def report_lines(run: BenchRun) -> list[str]:
    """What the operator reads after the progress bar: table, reasons, recommendation, where things went."""
    lines = [table(run.rows), ""]
    lines += [f"  {line}" for line in reasons(run.rows)]
    if run.reference and run.sampled:
        lines.append(f"quality reference: {run.reference}, but synthesis is sampled: every configuration was "
                     "checked on its own audio (finite, audible, plausible length), none compared with it")
    elif run.reference:
        lines.append(f"quality reference: {run.reference} (deterministic synthesis, same texts)")
    if note := first_audio_note(run.rows):
        lines.append(note)
    if run.recommendation:
        lines.append(f"recommended: {run.recommendation.configuration} -- {run.recommendation.reason}")
    else:
        lines.append("recommended: none -- no configuration ran and passed the quality check")
    lines += shape_lines(run.shapes) if run.shapes else [run.shapes_note]
    lines += [f"wrote {path}" for path in run.files] + [run.chart, run.profile.message]
    return lines


def benchmark_for_launch(tiers: list[str], model_dir: Path | None, load: LoadOptions | None = None) -> None:
    """start_optimized_server.py --benchmark: a quick run over the launcher's candidate tiers; the launcher
    then reads the tuning profile it wrote like any other. `load`: the server's own (default: its environment)."""
    run = run_benchmark(BenchOptions(configs=tuple(TIERS[tier] for tier in tiers), quick=True, model_dir=model_dir,
                                     load=load or server_load_options()))
    for line in filter(None, report_lines(run)):
        if "\n" in line:  # a table
            print(line, file=sys.stderr)
        else:
            log.info("benchmark: %s", line.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Measure ttspilot's tiers on this machine (each in a fresh process), or load-test a running "
        "server. Without a configuration flag: the tiers start_optimized_server.py would try here.",
    )
    what = parser.add_argument_group("what to measure")
    what.add_argument("--test_all", action="store_true",
                      help="every TRT/JIT/FP16 combination on CUDA (TRT ones at trt_concurrent 1 and 2), cpu, cpu+jit")
    what.add_argument("--tier", action="append", choices=list(TIERS), help="a named tier (repeatable)")
    what.add_argument("--load_trt", action="store_true")
    what.add_argument("--load_jit", action="store_true")
    what.add_argument("--fp16", action="store_true")
    what.add_argument("--trt_concurrent", type=int)
    what.add_argument("--device", choices=["cuda", "cpu"])
    what.add_argument("--model_dir", type=Path, help="model folder; default: the embedded voice")
    what.add_argument("--cosyvoice_root", type=Path,
                      help="official CosyVoice checkout each measured process loads, as the server's flag "
                      "(default: $TTSPILOT_COSYVOICE_ROOT, else an importable cosyvoice package)")
    what.add_argument("--voices", type=Path, metavar="FILE",
                      help="zero-shot voices to register, as the server's flag (CosyVoice models without built-in "
                      "speakers need one; default: $TTSPILOT_VOICES)")
    how = parser.add_argument_group("how")
    how.add_argument("--repeats", type=int, help=f"measured repeats per text (default {REPEATS}; --quick: {QUICK_REPEATS})")
    how.add_argument("--quick", action="store_true", help="fewer repeats, short and medium texts, shorter throughput runs")
    how.add_argument("--texts", type=Path, metavar="FILE", help="your own texts, one per line")
    how.add_argument("--language", choices=["auto", *TEXT_SETS], default="auto",
                     help="built-in text set (auto: the voice's language)")
    how.add_argument("--concurrency", type=int, nargs="+", metavar="N",
                     help="clients: benchmark throughput at 1..N (default 2) or at the listed counts; "
                     "server mode runs each listed count (default 1)")
    how.add_argument("--output_dir", type=Path, help="default: benchmarks/<timestamp>/")
    how.add_argument("--no_shapes", action="store_true",
                     help="skip measuring the best tier's pool shapes (sessions x threads), which the launcher's "
                     "--objective picks from")
    how.add_argument("--shape_seconds", type=float, metavar="S",
                     help=f"concurrent load per pool shape (default {SHAPE_S:g}; --quick: {QUICK_SHAPE_S:g})")
    server = parser.add_argument_group("server mode")
    server.add_argument("--server", metavar="URL", help="drive this running server instead of measuring tiers")
    server.add_argument("--api", choices=["sft", "openai", "piper"], default="sft",
                        help="sft: /inference_sft, openai: /v1/audio/speech, piper: piper.http_server /synthesize")
    server.add_argument("--duration", type=float, default=10.0, help="seconds of load per client count")
    server.add_argument("--stream", action="store_true", help="streamed requests (raw PCM); measures time to first audio")
    server.add_argument("--stagger", type=float, default=0.0, metavar="S",
                        help="client i starts i x S seconds after the first, so arrivals do not line up")
    server.add_argument("--text", default="medium", help="which text to send: short, medium, long (or lineN of --texts)")
    return parser


def selected_configs(args: argparse.Namespace) -> tuple[OptimizationConfig, ...] | None:
    if args.test_all:
        return tuple(all_configurations())
    if args.tier:
        return tuple(TIERS[tier] for tier in args.tier)
    if args.load_trt or args.load_jit or args.fp16 or args.device or args.trt_concurrent:
        return (config_from_flags(load_trt=args.load_trt, load_jit=args.load_jit, fp16=args.fp16,
                                  trt_concurrent=args.trt_concurrent or 1, device=args.device),)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [ttspilot] %(message)s", datefmt="%H:%M:%S")
    try:
        texts = read_texts(args.texts) if args.texts else None
        configs = selected_configs(args)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.server:
        return drive_server(args, texts, parser)
    levels = args.concurrency or [2]
    try:
        run = run_benchmark(BenchOptions(
            configs=configs, repeats=args.repeats, quick=args.quick, texts=texts, language=args.language,
            concurrency=tuple(range(1, levels[0] + 1)) if len(levels) == 1 else tuple(levels),
            output_dir=args.output_dir, model_dir=args.model_dir,
            load=server_load_options(args.cosyvoice_root, args.voices), shapes=not args.no_shapes,
            shape_seconds=args.shape_seconds,
        ))
    except EngineLoadError as error:
        parser.error(f"--model_dir: {error.reason}")
    print("\n".join(report_lines(run)))
    return 0 if any(row.status == "ran" for row in run.rows) else 1


def drive_server(args: argparse.Namespace, texts: dict[str, str] | None, parser: argparse.ArgumentParser) -> int:
    """Server mode: one bounded closed-loop run per client count, then the table and files."""
    choices = texts or TEXT_SETS["en" if args.language == "auto" else args.language]
    if args.text not in choices:
        parser.error(f"--text {args.text!r}: choose one of {', '.join(choices)}")
    if args.stream and args.api == "piper":
        parser.error("piper's http_server has no streaming: drop --stream for --api piper")
    base = LoadSpec(args.server.rstrip("/"), args.api, choices[args.text], 1, args.duration, args.stream,
                    stagger_s=args.stagger)
    try:
        results = run_levels(base, args.concurrency or [1])
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summaries = [result.summary() for result in results]
    output_dir = args.output_dir or default_output_dir()
    summary = {"server": base.url, "api": base.api, "text": base.text, "duration_s": base.duration_s}
    files = write_files(pd.DataFrame.from_records(summaries), output_dir, "server", summary)
    print(load_table(summaries))
    print("\n".join(f"wrote {path}" for path in files))
    return 0
