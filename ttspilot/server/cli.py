"""Command line of fastapi_server.py: flags -> OptimizationConfig + ServerSettings -> uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from ttspilot.config import TIERS, ServerSettings, config_from_flags
from ttspilot.server.call_watch import CallWatch
from ttspilot.server.lifetime import end_with_launcher

log = logging.getLogger("ttspilot.server")


# Settings flags: given ones override TTSPILOT_* environment variables, absent ones leave them alone.
SETTING_FLAGS: dict[str, type] = {
    "host": str, "port": int, "grpc_port": int, "model_dir": Path, "output_sample_rate": int, "max_text_length": int,
    "max_queue": int, "request_timeout": float, "write_timeout": float, "header_timeout": float,
    "ws_ping_interval": float, "ws_ping_timeout": float, "call_max_chars": int, "call_bytes_per_char": int,
    "memory_budget_mb": int, "max_body_bytes": int, "max_ws_connections": int, "api_key": str, "shutdown_grace": int,
    "cosyvoice_root": Path, "voices": Path, "call_timeout": float, "upload_dir": Path,
    "vllm_gpu_memory_utilization": float, "scheduling": str, "segment_max_length": int, "first_segment_max": int,
    "whole_segment_max_length": int,
    "benchmark_dir": Path,
}


def build_parser() -> argparse.ArgumentParser:
    fields = ServerSettings.model_fields
    parser = argparse.ArgumentParser(
        description="ttspilot TTS server (one engine, one tier, one process)",
        epilog="Every setting can also come from a TTSPILOT_<NAME> environment variable, e.g. TTSPILOT_API_KEY.",
    )
    for name, kind in SETTING_FLAGS.items():
        field = fields[name]
        parser.add_argument(f"--{name}", type=kind, default=argparse.SUPPRESS,
                            help=f"{field.description or name} (default: {field.default})")
    parser.add_argument("--cors_origins", type=lambda text: [o.strip() for o in text.split(",") if o.strip()],
                        default=argparse.SUPPRESS, help="comma-separated origins allowed by CORS (default: CORS off)")
    parser.add_argument("--tier", choices=list(TIERS),
                        help="named tier; overrides the individual flags except the pool shape "
                        "(--trt_concurrent, --cpu_threads), which overrides the tier's and keeps its name")
    parser.add_argument("--load_trt", action="store_true", help="TensorRT")
    parser.add_argument("--load_jit", action="store_true", help="ahead-of-time optimized graph / JIT")
    parser.add_argument("--fp16", action="store_true", help="half precision")
    parser.add_argument("--trt_concurrent", type=_positive, metavar="N",
                        help="pooled sessions: segments synthesized at once (default: the tier's, else 1)")
    parser.add_argument("--cpu_threads", type=_positive, metavar="N",
                        help="intra-op threads per session (default: the cores split across the sessions on the "
                        "CPU, every core on a GPU tier)")
    parser.add_argument("--load_vllm", action="store_true",
                        help="vLLM for the LLM on top of a GPU tier (CosyVoice2/3 with vllm installed)")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when a GPU flag is set")
    parser.add_argument("--device_id", type=int, default=0, help="GPU index for the GPU tiers")
    parser.add_argument("--no_canary", action="store_true", help="ready after warm-up even if the canary audio fails")
    parser.add_argument("--log_level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def settings_from(args: argparse.Namespace) -> ServerSettings:
    given = {name: getattr(args, name) for name in [*SETTING_FLAGS, "cors_origins"] if hasattr(args, name)}
    return ServerSettings(**given, **({"canary": False} if args.no_canary else {}))


def quiet_signals() -> None:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a no-op handler lets us exit 0."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_flags(
            args.tier, load_trt=args.load_trt, load_jit=args.load_jit, fp16=args.fp16,
            trt_concurrent=args.trt_concurrent, device=args.device, device_id=args.device_id, load_vllm=args.load_vllm,
            cpu_threads=args.cpu_threads,
        )
        settings = settings_from(args)
    except (ValueError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if settings.launcher_pid is not None and not end_with_launcher(settings.launcher_pid):
        log.error("the launcher (pid %d) that started this server is gone; not starting", settings.launcher_pid)
        return 1

    import uvicorn

    from ttspilot.engines import load_engine
    from ttspilot.engines.base import EngineLoadError, LoadOptions
    from ttspilot.server.app import create_app
    from ttspilot.server.connections import connection_protocols

    log.info("loading %s with tier %s", settings.model_dir or "the embedded voice", config.tier)
    try:
        engine = load_engine(settings.model_dir, config, LoadOptions(settings.cosyvoice_root, settings.voices,
                                                                       settings.vllm_gpu_memory_utilization))
    except EngineLoadError as error:
        log.error("engine failed to load: %s", error.reason)
        return 3
    info = engine.info()
    log.info("engine %s ready on %s, %d session(s) x %s intra-op thread(s); asked for but inactive: %s", engine.name,
             ",".join(info.providers), info.concurrency, info.threads or "?", info.inactive() or "none")
    quiet_signals()
    app = create_app(engine, settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=args.log_level,
        timeout_graceful_shutdown=settings.shutdown_grace, access_log=False,  # ttspilot.access logs without the text
        # asyncio even where uvloop is installed (Ray brings it): the loop grpc.aio supports, and the one measured.
        loop="asyncio",
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        **connection_protocols(header_timeout=settings.header_timeout, write_timeout=settings.write_timeout),
    )
    log.info("server stopped")
    leave_running_calls(app.state.ttspilot.pipeline.watch)
    return 0


def leave_running_calls(watch: CallWatch) -> None:
    """Exit now when an engine call still runs: the interpreter would wait at exit for its thread, forever if stuck."""
    if running := watch.in_flight():
        log.warning("%d engine call(s) still running (%s): exiting without waiting for them", running,
                    watch.stuck() or "none stuck yet")
        logging.shutdown()
        os._exit(0)
