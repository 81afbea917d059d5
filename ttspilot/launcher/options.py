"""Flags both launchers share; anything they do not know passes through to the server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ttspilot.config import ServerSettings
from ttspilot.launcher.run import LaunchOptions


def add_launch_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--model_dir", type=Path, help="model folder; default: the embedded voice")
    parser.add_argument("--ready_timeout", type=float, default=180.0, help="seconds a tier may take to become ready")
    parser.add_argument("--skip_test", action="store_true", help="skip the canary synthesis")
    parser.add_argument("--max_restarts", type=int, default=3, help="restarts of a crashed server before falling back")


def launch_options(args: argparse.Namespace, passthrough: list[str]) -> LaunchOptions:
    server_args = list(passthrough) + (["--model_dir", str(args.model_dir)] if args.model_dir else [])
    return LaunchOptions(
        host=args.host, port=args.port, server_args=tuple(server_args), ready_timeout=args.ready_timeout,
        canary=not args.skip_test, max_restarts=args.max_restarts,
    )


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [ttspilot] %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
