"""Flags both launchers share; anything they do not know passes through to the server."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ttspilot.config import API_KEY_ENV, ServerSettings
from ttspilot.engines import engine_support
from ttspilot.engines.base import EngineLoadError
from ttspilot.launcher.port import PortUnavailable, check_port_free
from ttspilot.launcher.run import LaunchOptions


def add_launch_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--model_dir", type=Path, default=defaults.model_dir,
                        help="model folder; default: $TTSPILOT_MODEL_DIR, else the embedded voice")
    parser.add_argument("--api_key", default=defaults.api_key,
                        help=f"key the server requires (default: ${API_KEY_ENV}); the launcher's own checks use it too")
    parser.add_argument("--ready_timeout", type=float, default=180.0, help="seconds a tier may take to become ready")
    parser.add_argument("--skip_test", action="store_true", help="skip the canary synthesis")
    parser.add_argument("--max_restarts", type=int, default=3,
                        help="restarts of a crashed server within --restart_window before falling back")
    parser.add_argument("--restart_window", type=float, default=300.0,
                        help="seconds over which --max_restarts is counted; older crashes are forgiven")
    parser.add_argument("--health_interval", type=float, default=5.0,
                        help="seconds between /health checks of the ready server (0: no checks)")
    parser.add_argument("--unhealthy_after", type=_at_least_one, default=3,
                        help="failed /health checks in a row after which the server is restarted (a stuck engine "
                        "call past --call_timeout turns /health 503)")


def _at_least_one(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def launch_options(args: argparse.Namespace, passthrough: list[str]) -> LaunchOptions:
    server_args = list(passthrough) + (["--model_dir", str(args.model_dir)] if args.model_dir else [])
    return LaunchOptions(
        host=args.host, port=args.port, server_args=tuple(server_args), ready_timeout=args.ready_timeout,
        canary=not args.skip_test, max_restarts=args.max_restarts, restart_window=args.restart_window,
        health_interval=args.health_interval, unhealthy_after=args.unhealthy_after,
        api_key=args.api_key,
    )


# Server flags that make a tier and its pool shape: each candidate sets its own, so a passed-through one would
# break the others (--load_vllm on the cpu candidate, --tier on every one, --cpu_threads on a measured shape).
TIER_FLAGS = ("--tier", "--load_trt", "--load_jit", "--fp16", "--trt_concurrent", "--cpu_threads", "--device",
              "--load_vllm")


def passed_grpc_port(passthrough: Sequence[str]) -> int | None:
    """--grpc_port among the flags passed through: a taken one would fail every tier's start, so it is checked first."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--grpc_port", type=int)
    known, _ = parser.parse_known_args(list(passthrough))
    return known.grpc_port


def server_load_paths(passthrough: list[str]) -> tuple[Path | None, Path | None]:
    """--cosyvoice_root and --voices among the flags passed through to the server: precompile and the
    benchmark need them to load the model the way the server will."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cosyvoice_root", type=Path)
    parser.add_argument("--voices", type=Path)
    known, _ = parser.parse_known_args(passthrough)
    return known.cosyvoice_root, known.voices


def cannot_launch(args: argparse.Namespace, check_port: bool = True, passthrough: list[str] = ()) -> str | None:
    """Why no tier could start with these flags (no such --model_dir, port or --grpc_port taken), in one line; None
    when none."""
    chosen = [arg.split("=")[0] for arg in passthrough if arg.split("=")[0] in TIER_FLAGS]
    if chosen:
        return (f"{', '.join(chosen)}: the launcher sets these per tier (vLLM included, when it can run); "
                "to force one configuration run fastapi_server.py with them")
    if args.model_dir is not None and not args.model_dir.is_dir():
        return f"--model_dir {args.model_dir}: no such folder"
    try:
        engine_support(args.model_dir)
    except EngineLoadError as error:
        return f"--model_dir: {error.reason}"
    if check_port:
        grpc_port = passed_grpc_port(passthrough)
        try:
            check_port_free(args.host, args.port)
            if grpc_port:  # 0 picks a free port
                check_port_free(args.host, grpc_port, flag="--grpc_port")
        except PortUnavailable as error:
            return str(error)
    return None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [ttspilot] %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
