"""start_fallback_server.py: walk the tiers from fastest to safest until one really works.

Unlike the optimized launcher it does not trust the tier policy's thresholds (memory, compute
capability) and tries every tier; only when the probe finds no GPU tier can start at all (no
GPU, or no CUDA runtime for the engine) are the GPU tiers skipped, with the probe's reason,
instead of starting a child for each just to watch it exit. It reads no tuning profile, so every
tier runs in its default pool shape.
"""

from __future__ import annotations

import argparse
import logging

from ttspilot.config import FALLBACK_ORDER, TIERS
from ttspilot.engines import engine_support
from ttspilot.hardware import probe
from ttspilot.launcher.optimized import log_skipped
from ttspilot.launcher.options import add_launch_flags, cannot_launch, launch_options, setup_logging
from ttspilot.launcher.run import EXIT_CANNOT_LAUNCH, Supervisor
from ttspilot.tiers import Candidate, plan

log = logging.getLogger("ttspilot.launcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start the server on the first tier that works: " + " -> ".join(FALLBACK_ORDER),
        epilog="Every tier runs in its default pool shape (start_optimized_server.py --objective runs a measured one). "
        "Unknown flags are passed to fastapi_server.py.",
    )
    add_launch_flags(parser)
    parser.add_argument("--force_config", choices=list(TIERS), help="start this one tier, no fallback")
    args, passthrough = parser.parse_known_args(argv)
    setup_logging()
    if problem := cannot_launch(args, passthrough=passthrough):
        log.error("%s", problem)
        return EXIT_CANNOT_LAUNCH
    tiers = [args.force_config] if args.force_config else list(FALLBACK_ORDER)
    if not args.force_config:
        tier_plan = plan(probe(), engine_support(args.model_dir))
        if tier_plan.gpu is None:  # no GPU tier can start here, so none is tried
            log_skipped(tier_plan.skipped)
            tiers = [tier for tier in tiers if tier not in {candidate.tier for candidate in tier_plan.skipped}]
    log.info("trying tiers in order: %s", " -> ".join(tiers))
    return Supervisor(launch_options(args, passthrough)).run([Candidate(tier, "fallback order") for tier in tiers])
