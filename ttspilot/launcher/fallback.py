"""start_fallback_server.py: walk the tiers from fastest to safest until one really works."""

from __future__ import annotations

import argparse
import logging

from ttspilot.config import FALLBACK_ORDER, TIERS
from ttspilot.launcher.options import add_launch_flags, launch_options, setup_logging
from ttspilot.launcher.run import Supervisor

log = logging.getLogger("ttspilot.launcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start the server on the first tier that works: " + " -> ".join(FALLBACK_ORDER),
        epilog="Unknown flags are passed to fastapi_server.py.",
    )
    add_launch_flags(parser)
    parser.add_argument("--force_config", choices=list(TIERS), help="start this one tier, no fallback")
    args, passthrough = parser.parse_known_args(argv)
    setup_logging()
    tiers = [args.force_config] if args.force_config else list(FALLBACK_ORDER)
    log.info("trying tiers in order: %s", " -> ".join(tiers))
    return Supervisor(launch_options(args, passthrough)).run(tiers)
