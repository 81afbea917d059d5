"""Command line of fastapi_server.py: flags -> OptimizationConfig + ServerSettings -> uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ttspilot.config import TIERS, ServerSettings, config_from_flags

log = logging.getLogger("ttspilot.server")


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerSettings()
    parser = argparse.ArgumentParser(description="ttspilot TTS server (one engine, one tier, one process)")
    parser.add_argument("--model_dir", type=Path, default=defaults.model_dir, help="model folder; default: embedded voice")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--tier", choices=list(TIERS), help="named tier; overrides the individual flags")
    parser.add_argument("--load_trt", action="store_true", help="TensorRT")
    parser.add_argument("--load_jit", action="store_true", help="ahead-of-time optimized graph / JIT")
    parser.add_argument("--fp16", action="store_true", help="half precision")
    parser.add_argument("--trt_concurrent", type=int, default=1, help="independent sessions for concurrent requests")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when a GPU flag is set")
    parser.add_argument("--device_id", type=int, default=0, help="GPU index for the GPU tiers")
    parser.add_argument("--output_sample_rate", type=int, default=defaults.output_sample_rate)
    parser.add_argument("--max_text_length", type=int, default=defaults.max_text_length)
    parser.add_argument("--no_canary", action="store_true", help="ready after warm-up even if the canary audio fails")
    parser.add_argument("--log_level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_flags(
            args.tier, load_trt=args.load_trt, load_jit=args.load_jit, fp16=args.fp16,
            trt_concurrent=args.trt_concurrent, device=args.device, device_id=args.device_id,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = ServerSettings(
        host=args.host, port=args.port, model_dir=args.model_dir,
        output_sample_rate=args.output_sample_rate, max_text_length=args.max_text_length,
        canary=not args.no_canary,
    )

    import uvicorn

    from ttspilot.engines import load_engine
    from ttspilot.engines.base import EngineLoadError
    from ttspilot.server.app import create_app

    log.info("loading %s with tier %s", settings.model_dir or "the embedded voice", config.tier)
    try:
        engine = load_engine(settings.model_dir, config)
    except EngineLoadError as error:
        log.error("engine failed to load: %s", error.reason)
        return 3
    info = engine.info()
    inactive = {flag: state["reason"] for flag, state in info.get("flags", {}).items() if not state["active"]}
    log.info("engine %s ready on %s; inactive: %s", engine.name, ",".join(info.get("providers", [])), inactive or "none")
    try:
        uvicorn.run(create_app(engine, settings), host=settings.host, port=settings.port, log_level=args.log_level)
    except KeyboardInterrupt:
        log.info("stopped by Ctrl-C")
    return 0
