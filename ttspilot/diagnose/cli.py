"""`diagnose_gpu.py`: check everything the tiers depend on and say, check by check, what to fix.

Exit codes: 0 nothing failed (WARN and SKIP allowed), 1 at least one check failed, 2 the tool
itself could not run (bad arguments, or a check crashed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ttspilot.config import ServerSettings
from ttspilot.diagnose.registry import CHECK_NAMES, CHECKS, Context, recommend, run_checks
from ttspilot.diagnose.report import (
    EXIT_CANNOT_RUN,
    environment_header,
    exit_code,
    render_json,
    render_text,
    to_document,
    use_color,
)


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerSettings()
    width = max(len(name) for name in CHECK_NAMES)
    listing = "\n".join(f"  {check.name:<{width}}  {check.summary}" for check in CHECKS)
    parser = argparse.ArgumentParser(
        prog="diagnose_gpu.py",
        description="Inspect the environment ttspilot's tiers depend on (driver, CUDA, cuDNN, ONNX Runtime, "
                    "TensorRT, packages, model, port) and print PASS/WARN/FAIL/SKIP per check with the fix.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"checks:\n{listing}\n\nexit codes: 0 nothing failed, 1 a check failed, 2 the tool could not run",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")
    parser.add_argument("--check", action="append", metavar="NAME", choices=CHECK_NAMES,
                        help="run only this check (repeatable); names below")
    parser.add_argument("--model_dir", type=Path, default=defaults.model_dir,
                        help="model folder to check (Piper voices or CosyVoice); default: the embedded voice")
    parser.add_argument("--cosyvoice_root", type=Path, default=defaults.cosyvoice_root,
                        help="an official CosyVoice checkout to check end to end with a tiny model "
                        "(default: $TTSPILOT_COSYVOICE_ROOT)")
    parser.add_argument("--host", default=defaults.host, help=f"server address to check (default {defaults.host})")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help=f"server port to check (default {defaults.port})")
    parser.add_argument("--no-color", dest="color", action="store_false", help="never colour the status column")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad arguments
    started = time.perf_counter()
    try:
        ctx = Context(args.model_dir, args.host, args.port, cosyvoice_root=args.cosyvoice_root)
        results = run_checks(ctx, args.check)
        recommendation = recommend(ctx, results)
    except Exception as exc:  # the framework itself failed: no report can be trusted
        print(f"diagnose_gpu.py could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    seconds = time.perf_counter() - started
    if args.json:
        options = {"checks": args.check or list(CHECK_NAMES), "model_dir": str(args.model_dir) if args.model_dir
                   else None, "host": args.host, "port": args.port,
                   "cosyvoice_root": str(args.cosyvoice_root) if args.cosyvoice_root else None}
        sys.stdout.write(render_json(to_document(results, recommendation, seconds=seconds, options=options)))
    else:
        color = use_color(sys.stdout, allowed=args.color)
        wrap = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else None
        model = str(args.model_dir) if args.model_dir else "embedded Piper voice"
        header = environment_header(f"model: {model} ({ctx.engine}); port {args.host}:{args.port}")
        sys.stdout.write(render_text(results, recommendation, color=color, header=header, seconds=seconds, wrap=wrap))
    return exit_code(results)
