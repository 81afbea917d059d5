"""Soak: a bounded closed-loop load on a server this script starts on loopback.

    python -m ttspilot.bench.soak --clients 4 --duration 600 [--stream] [-- server flags...]

Reports requests, errors by kind, latency percentiles, first audio and stall per stream
(with --stream: the silence a real-time listener heard after first audio) and the server's RSS
at the start and the end, and fails (exit 1) on any 5xx other than a deliberate 503 or on RSS growth
of 10% or more. It stops by itself: the load is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ttspilot.bench.load import LoadSpec, run_load
from ttspilot.bench.texts import ENGLISH
from ttspilot.launcher.child import ServerChild

MAX_RSS_GROWTH = 0.10


@dataclass(frozen=True)
class SoakReport:
    load: dict[str, Any]
    rss_start_mb: float
    rss_end_mb: float
    server_errors: int  # 5xx other than 503

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_mb - self.rss_start_mb) / self.rss_start_mb

    @property
    def passed(self) -> bool:
        return self.server_errors == 0 and self.rss_growth < MAX_RSS_GROWTH


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def soak(clients: int, duration_s: float, stream: bool, text: str, server_args: list[str]) -> SoakReport:
    """Start a server, warm it, measure RSS, run the load, measure RSS again, stop the server."""
    child = ServerChild.on_free_port(["--log_level", "warning", *server_args])
    url = child.url
    child.start()
    try:
        reason = child.wait_ready(120)
        if reason is not None:
            raise RuntimeError(f"server did not start: {reason}")
        spec = LoadSpec(url, "sft", text, clients, 5.0, stream=stream)
        run_load(spec)  # warm-up: reach steady state before the first RSS reading
        rss_start = _rss_mb(child.process.pid)
        result = run_load(LoadSpec(url, "sft", text, clients, duration_s, stream=stream))
        rss_end = _rss_mb(child.process.pid)
    finally:
        child.stop()
    server_errors = sum(
        count for kind, count in result.errors.items() if kind.startswith("HTTP 5") and kind != "HTTP 503"
    )
    return SoakReport(result.summary(), round(rss_start, 1), round(rss_end, 1), server_errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (bounded)")
    parser.add_argument("--stream", action="store_true", help="streamed requests (time to first audio measured)")
    parser.add_argument("--text", choices=list(ENGLISH), default="medium")
    args, server_args = parser.parse_known_args(argv)
    report = soak(args.clients, args.duration, args.stream, ENGLISH[args.text], server_args)
    print(json.dumps(asdict(report) | {"rss_growth": round(report.rss_growth, 4), "passed": report.passed}, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
